// The AWS SDK warns once per process that future releases will need Node 22. Local commands run on Node 20 by
// design (the Lambda runtime is 22+), so the warning is noise for a marketer running `strata`.
process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';
export {};
