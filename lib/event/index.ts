/** The Lambda event contract: what a sync request looks like and how a bad one is refused. */
export { BadEventError } from './bad-event-error';
export { parseSyncRequest, SITE_ID_PATTERN, type SyncRequest } from './sync-request';
