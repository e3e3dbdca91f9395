/** The Lambda event contract: what a site operation's request looks like and how a bad one is refused. */
export { BadEventError } from './bad-event-error';
export {
  ACTIONS,
  type Action,
  type CheckRequest,
  DEFAULT_MAX_CHANGES,
  MAX_MAX_CHANGES,
  type MigrateRequest,
  type PlanRequest,
  parseSiteRequest,
  SITE_ID_PATTERN,
  type SiteRequest,
  type SyncRequest,
} from './site-request';
