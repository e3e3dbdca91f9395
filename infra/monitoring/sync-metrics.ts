/**
 * The CloudWatch metrics the alarms and the dashboard read, built only from the names the function
 * emits with (lib/observability/metric-names.ts), including the `service` dimension Powertools adds.
 */
import type { Duration } from 'aws-cdk-lib';
import { MathExpression, Metric, Stats } from 'aws-cdk-lib/aws-cloudwatch';
import {
  type EntityMetric,
  METRICS_NAMESPACE,
  MetricDimension,
  type RunMetric,
  SERVICE_NAME,
} from '../../lib/observability/metric-names';

export type EntityMetricName = (typeof EntityMetric)[keyof typeof EntityMetric];
export type RunMetricName = (typeof RunMetric)[keyof typeof RunMetric];
/** The aggregations CloudWatch Metrics Insights offers. */
export type InsightsAggregate = 'SUM' | 'AVG' | 'MAX' | 'MIN' | 'COUNT';

/** One site's run metric, exactly as the function emits it: dimensions `service` and `SiteId`. */
export function siteRunMetric(metricName: RunMetricName, siteId: string, period: Duration): Metric {
  return new Metric({
    namespace: METRICS_NAMESPACE,
    metricName,
    dimensionsMap: { [MetricDimension.Service]: SERVICE_NAME, [MetricDimension.SiteId]: siteId },
    statistic: Stats.SUM,
    period,
  });
}

/**
 * A per-entity metric added up over every site.
 *
 * The function emits entity metrics per site (`service`, `SiteId`, `Entity`); a fleet-wide view of
 * one entity needs a Metrics Insights query, because a plain metric alarm must name every dimension
 * value, and one alarm per site and entity would be thousands of alarms.
 */
export function fleetEntityMetric(
  metricName: EntityMetricName,
  entity: string,
  aggregate: InsightsAggregate,
  period: Duration,
): MathExpression {
  const { Entity, SiteId, Service } = MetricDimension;
  return new MathExpression({
    expression:
      `SELECT ${aggregate}(${metricName}) FROM SCHEMA("${METRICS_NAMESPACE}", ${Entity}, ${SiteId}, ${Service}) ` +
      `WHERE ${Entity} = '${entity}' AND ${Service} = '${SERVICE_NAME}'`,
    label: `${entity} ${metricName}`,
    period,
  });
}

/** A per-run metric aggregated over every site (`service`, `SiteId`). */
export function fleetRunMetric(
  metricName: RunMetricName,
  aggregate: InsightsAggregate,
  period: Duration,
): MathExpression {
  const { SiteId, Service } = MetricDimension;
  return new MathExpression({
    expression:
      `SELECT ${aggregate}(${metricName}) FROM SCHEMA("${METRICS_NAMESPACE}", ${SiteId}, ${Service}) ` +
      `WHERE ${Service} = '${SERVICE_NAME}'`,
    label: `${metricName} ${aggregate.toLowerCase()}`,
    period,
  });
}
