/**
 * The site Lambda: validates the event, runs one site operation (sync, migrate, plan, check) with credentials
 * from Secrets Manager, logs, traces and emits its metrics, and returns its result (DESIGN §4).
 * Everything it calls lives in lib/operations.
 *
 * A bad event, a missing setting or an unreadable secret throws (the invocation fails, the Errors
 * alarm sees it); whatever happens in the databases is in the returned result instead.
 */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { type CredentialsSource, SecretsManagerCredentials } from '../../lib/credentials';
import type { ConnectOptions } from '../../lib/db/connect';
import type { SyncResult } from '../../lib/engine';
import { parseSiteRequest } from '../../lib/event';
import {
  emitSiteMigrated,
  emitSyncMetrics,
  emitSyncNotStarted,
  logCheckReport,
  logger,
  logMigrateResult,
  logPhase,
  logPlanResult,
  logSyncResult,
  metrics,
} from '../../lib/observability';
import { noTracing, type RunTracing, tracedCredentials } from '../../lib/observability/run-tracing';
import {
  type CheckReport,
  checkSite,
  type MigrateResult,
  migrateSite,
  type OperationOptions,
  type OperationSettings,
  operationSettings,
  type PlanResult,
  planSite,
  syncSite,
} from '../../lib/operations';

/** Time kept back from the Lambda's remaining time: cancelling, rolling back and flushing fit in it. */
export const DEFAULT_DEADLINE_MARGIN_MS = 5_000;

export const DEFAULT_CONNECT_OPTIONS: Readonly<ConnectOptions> = {
  connectTimeoutMs: 10_000,
  // A safety net per statement; the run as a whole is bounded by the deadline.
  statementTimeoutMs: 300_000,
  idleInTransactionTimeoutMs: 60_000,
};

export interface SyncHandlerOptions {
  /** A source, or a factory called at the first invocation (so a bad setting fails that invocation, not the import). */
  credentials: CredentialsSource | (() => CredentialsSource);
  deadlineMarginMs?: number;
  connectOptions?: ConnectOptions;
  /** SITE_MIGRATIONS and SYNC_RUN_RETENTION_DAYS; read from the environment at each invocation when absent. */
  settings?: Partial<OperationSettings>;
  /** The site schema migrations this build knows; tests give their own. */
  migrations?: OperationOptions['migrations'];
  /** X-Ray tracing; as the environment says when absent (tracingFromEnvironment). */
  tracing?: RunTracing;
}

/**
 * The X-Ray tracing when the function traces (POWERTOOLS_TRACE_ENABLED not "false", on Lambda),
 * otherwise none. The X-Ray SDK is a file of its own in the bundle, required only here: a function
 * that does not trace never loads it.
 */
export function tracingFromEnvironment(env: NodeJS.ProcessEnv = process.env): RunTracing {
  if (env.POWERTOOLS_TRACE_ENABLED?.toLowerCase() === 'false' || !env.AWS_EXECUTION_ENV) return noTracing;
  const { xrayTracing } = require('./xray-tracing') as typeof import('./xray-tracing');
  return xrayTracing();
}

function credentialsOnce(credentials: SyncHandlerOptions['credentials']): () => CredentialsSource {
  if (typeof credentials !== 'function') return () => credentials;
  let source: CredentialsSource | undefined;
  // Kept for the life of the container, so the secrets cache survives warm invocations.
  return () => {
    source ??= credentials();
    return source;
  };
}

/** The middy handler around a credentials source: `handler` below for AWS, the same with URLs for the demo. */
export function createSyncHandler(options: SyncHandlerOptions) {
  const tracing = options.tracing ?? tracingFromEnvironment();
  const source = credentialsOnce(options.credentials);
  const credentials = () => tracedCredentials(source(), tracing);
  const margin = options.deadlineMarginMs ?? DEFAULT_DEADLINE_MARGIN_MS;
  const connectOptions = options.connectOptions ?? DEFAULT_CONNECT_OPTIONS;

  async function runSiteOperation(
    event: unknown,
    context: Context,
  ): Promise<SyncResult | MigrateResult | PlanResult | CheckReport> {
    const started = Date.now();
    const request = parseSiteRequest(event);
    logger.appendKeys({ siteId: request.siteId });
    tracing.annotate({ siteId: request.siteId, action: request.action });
    const settings = { ...operationSettings(), ...options.settings };
    const remaining = context?.getRemainingTimeInMillis?.();
    const deadline = remaining === undefined ? undefined : started + remaining - margin;
    const common: OperationOptions = {
      ...(deadline !== undefined ? { deadline } : {}),
      connectOptions,
      maxDeleteRatio: settings.maxDeleteRatio,
      massDeleteMinRows: settings.massDeleteMinRows,
      ...(options.migrations ? { migrations: options.migrations } : {}),
      onCredentialsRefreshed: (error) =>
        logger.warn('authentication failed; the secrets changed since they were read, trying again', {
          error,
        }),
      onPhase: (timing) => {
        tracing.phase(timing);
        logPhase(logger, timing);
      },
    };
    if (request.action === 'check') {
      // Changes nothing: no metrics, one log line with every check.
      const report = await checkSite(credentials(), { siteId: request.siteId }, common);
      tracing.annotate({ tenantId: report.tenantId });
      logCheckReport(logger, request.siteId, report);
      return report;
    }
    if (request.action === 'plan') {
      // Read-only: no metrics, one log line (the rows it lists are in the result alone).
      const { action: _action, ...plan } = request;
      const result = await planSite(credentials(), plan, common);
      tracing.annotate({ tenantId: result.tenantId });
      logPlanResult(logger, request.siteId, result);
      return result;
    }
    if (request.action === 'migrate') {
      const { action: _action, ...migrate } = request;
      const result = await migrateSite(credentials(), migrate, common);
      logMigrateResult(logger, request.siteId, result);
      if (result.applied.length > 0) emitSiteMigrated(metrics, request.siteId);
      return result;
    }
    let result: SyncResult;
    try {
      result = await syncSite(credentials(), request, { ...common, ...settings });
    } catch (error) {
      emitSyncNotStarted(metrics, request.siteId, Date.now() - started);
      throw error;
    }
    logger.appendKeys({ tenantId: result.tenantId });
    tracing.annotate({ tenantId: result.tenantId });
    logSyncResult(logger, request.siteId, result);
    emitSyncMetrics(metrics, request.siteId, result);
    return result;
  }

  const handler = middy(runSiteOperation);
  // The segment first: the logger's and the metrics' work belongs to the invocation it traces.
  if (tracing.middleware) handler.use(tracing.middleware);
  return handler
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .use(logMetrics(metrics, { captureColdStartMetric: true }))
    .onError(async (request) => {
      const error = request.error as { code?: string; message?: string; name?: string } | undefined;
      logger.error('operation not run', {
        error: { code: error?.code ?? 'INTERNAL_ERROR', message: error?.message },
      });
    });
}

/** The deployed function: credentials from Secrets Manager (REMOTE_SECRET_ID, SITE_SECRET_PREFIX). */
export const handler = createSyncHandler({ credentials: () => SecretsManagerCredentials.fromEnvironment() });
