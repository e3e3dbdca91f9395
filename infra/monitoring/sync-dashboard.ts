/** The CloudWatch dashboard: rows inserted, updated, deleted and skipped per entity, failures, run durations, site migrations, the function and its queues. */
import { Duration } from 'aws-cdk-lib';
import {
  Dashboard,
  GraphWidget,
  type IMetric,
  LogQueryWidget,
  Stats,
  TextWidget,
} from 'aws-cdk-lib/aws-cloudwatch';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { EntityMetric, RunMetric } from '../../lib/observability/metric-names';
import { STALE_SITES_QUERY } from './stale-sites-query';
import { fleetEntityMetric, fleetRunMetric } from './sync-metrics';

const PERIOD = Duration.minutes(5);
const WIDTH = 12;
const HEIGHT = 6;

export interface SyncDashboardProps {
  readonly dashboardName: string;
  readonly syncFunction: IFunction;
  readonly entities: readonly string[];
  /** The function's log group, which the stale-sites query reads. */
  readonly logGroupName: string;
  readonly queues: readonly { readonly title: string; readonly queue: IQueue }[];
}

export class SyncDashboard extends Construct {
  readonly dashboard: Dashboard;

  constructor(scope: Construct, id: string, props: SyncDashboardProps) {
    super(scope, id);
    const fn = props.syncFunction;
    this.dashboard = new Dashboard(this, 'Dashboard', {
      dashboardName: props.dashboardName,
      defaultInterval: Duration.hours(6),
    });
    this.dashboard.addWidgets(
      new TextWidget({
        markdown:
          '# meter-sync\nRows changed per entity, summed over all sites (Metrics Insights), failures, run durations, site schema migrations, and the function. The sites whose last run failed are listed below; each schedules stack has a dashboard of its own with its stale sites.',
        width: 24,
        height: 2,
      }),
      new LogQueryWidget({
        title: 'Sites whose last run failed: last status and error code (saved query <name>/stale-sites)',
        logGroupNames: [props.logGroupName],
        queryString: STALE_SITES_QUERY,
        width: 24,
        height: 6,
      }),
    );
    for (const entity of props.entities) {
      const rows = (metric: (typeof EntityMetric)[keyof typeof EntityMetric]): IMetric =>
        fleetEntityMetric(metric, entity, 'SUM', PERIOD);
      this.dashboard.addWidgets(
        new GraphWidget({
          title: `${entity}: rows inserted, updated, deleted, skipped`,
          left: [
            rows(EntityMetric.RowsInserted),
            rows(EntityMetric.RowsUpdated),
            rows(EntityMetric.RowsDeleted),
            rows(EntityMetric.RowsSkipped),
          ],
          width: WIDTH,
          height: HEIGHT,
        }),
        new GraphWidget({
          title: `${entity}: failures and step duration`,
          left: [rows(EntityMetric.EntityFailed)],
          right: [fleetEntityMetric(EntityMetric.EntityDurationMs, entity, 'MAX', PERIOD)],
          width: WIDTH,
          height: HEIGHT,
        }),
      );
    }
    this.dashboard.addWidgets(
      new GraphWidget({
        title: 'Sync duration (ms)',
        left: [
          fleetRunMetric(RunMetric.SyncDurationMs, 'AVG', PERIOD),
          fleetRunMetric(RunMetric.SyncDurationMs, 'MAX', PERIOD),
          fn.metricDuration({ period: PERIOD, statistic: Stats.p(99), label: 'Lambda duration p99' }),
        ],
        width: WIDTH,
        height: HEIGHT,
      }),
      new GraphWidget({
        title: 'Runs: successful syncs, invocations, errors, throttles',
        left: [
          fleetRunMetric(RunMetric.SyncSucceeded, 'SUM', PERIOD),
          fn.metricInvocations({ period: PERIOD, statistic: Stats.SUM }),
          fn.metricErrors({ period: PERIOD, statistic: Stats.SUM }),
          fn.metricThrottles({ period: PERIOD, statistic: Stats.SUM }),
        ],
        right: [fn.metric('ConcurrentExecutions', { period: PERIOD, statistic: Stats.MAXIMUM })],
        width: WIDTH,
        height: HEIGHT,
      }),
      // A migration is expected news (a deploy brought a newer site schema), not a fault: shown, never alarmed on.
      new GraphWidget({
        title: 'Site schema migrations applied (all sites)',
        left: [fleetRunMetric(RunMetric.SiteMigrated, 'SUM', PERIOD)],
        width: WIDTH,
        height: HEIGHT,
      }),
      new GraphWidget({
        title: 'Parked invocations (messages visible)',
        left: props.queues.map(({ title, queue }) =>
          queue.metricApproximateNumberOfMessagesVisible({
            period: PERIOD,
            statistic: Stats.MAXIMUM,
            label: title,
          }),
        ),
        width: WIDTH,
        height: HEIGHT,
      }),
    );
  }
}
