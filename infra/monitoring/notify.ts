/** Wires an alarm to the one alarm topic, both ways: people hear when it fires and when it clears. */
import type { AlarmBase } from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import type { ITopic } from 'aws-cdk-lib/aws-sns';

export function notify<T extends AlarmBase>(alarm: T, topic: ITopic): T {
  const action = new SnsAction(topic);
  alarm.addAlarmAction(action);
  alarm.addOkAction(action);
  return alarm;
}
