/**
 * Environment for the `strata` command on a terminal. The handlers emit CloudWatch EMF metrics on stdout, which
 * in Lambda become metrics and on a terminal would drown the readable log; the local stack prints its own.
 */
import './quiet-sdk-warnings.js';

process.env['POWERTOOLS_METRICS_DISABLED'] ??= 'true';
