// aws-local-stepfunctions 3.x calls Promise.withResolvers, which Node 20 lacks.
import '../functions/local/polyfills.js';
import '../functions/local/quiet-sdk-warnings.js';
