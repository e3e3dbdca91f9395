/**
 * The Logs Insights query a staleness page points at, saved and on the dashboard: every site whose
 * last run did not end `ok`, with its last status, its last error code and when it last logged. A
 * site that has not run at all logs nothing: its schedules stack's dashboard shows its alarm.
 */
export const STALE_SITES_QUERY = [
  'fields @timestamp, siteId, status, error.code',
  // The run's summary line ("sync <status>") and every error line (an entity's, "operation not run").
  '| filter ispresent(siteId) and (message like /^sync / or level = "ERROR")',
  '| stats latest(status) as lastStatus, latest(error.code) as lastErrorCode, max(@timestamp) as lastLogged by siteId',
  '| filter lastStatus != "ok"',
  '| sort lastLogged desc',
  '| limit 1000',
].join('\n');
