/**
 * The one Powertools Logger of meter-sync: structured JSON lines on stdout, with the Lambda context
 * when the handler runs (injectLambdaContext), and siteId, tenantId and entity as each line needs.
 * Level from POWERTOOLS_LOG_LEVEL (INFO by default).
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { SERVICE_NAME } from './metric-names';

export const logger = new Logger({ serviceName: SERVICE_NAME });
