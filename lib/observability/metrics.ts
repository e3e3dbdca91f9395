/**
 * The one Powertools Metrics instance of meter-sync, in the `MeterSync` namespace with the `service`
 * dimension. It writes CloudWatch Embedded Metric Format lines to stdout; its own warnings go through
 * the structured logger.
 */
import { Metrics } from '@aws-lambda-powertools/metrics';
import { logger } from './logger';
import { METRICS_NAMESPACE, SERVICE_NAME } from './metric-names';

export const metrics = new Metrics({ namespace: METRICS_NAMESPACE, serviceName: SERVICE_NAME, logger });
