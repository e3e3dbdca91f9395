/** The Lambda event contract: what a site operation's request looks like and how a bad one is refused. */
export { BadEventError } from './bad-event-error';
export {
  ACTIONS,
  type Action,
  type MigrateRequest,
  parseSiteRequest,
  SITE_ID_PATTERN,
  type SiteRequest,
  type SyncRequest,
} from './site-request';
