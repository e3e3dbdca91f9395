/**
 * What the Lambda runtime sets in the environment before the function's module loads; import it
 * first, as Powertools reads it when its instances are created (a ColdStart metric only on-demand).
 */
process.env.AWS_LAMBDA_INITIALIZATION_TYPE = 'on-demand';
process.env.AWS_REGION ??= 'eu-west-1';
