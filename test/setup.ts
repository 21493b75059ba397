import '../functions/local/quiet-sdk-warnings.js';
