/**
 * A Strata Lambda function: Node.js on ARM, bundled and minified by the local esbuild (never Docker), with its
 * own role and its own log group, and with the project's rules and journeys baked into the bundle.
 *
 * Baking the files in (esbuild `define`) rather than reading them at run time means the deployed code and the
 * deployed rules are one artifact: the ruleset version a decision records is the one that was synthesized.
 */
import type { Duration } from 'aws-cdk-lib';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Architecture, LoggingFormat, Runtime } from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { join } from 'node:path';
import type { ProjectFiles } from '../functions/core/ruleset.js';
import { ENV, PROJECT_FILES_GLOBAL } from '../functions/handlers/runtime.js';

/** The newest Node.js runtime Lambda offers in this CDK version (cdk-nag's L1 checks that it is the latest). */
export const FUNCTION_RUNTIME = Runtime.NODEJS_24_X;

/**
 * esbuild receives the project files as one command-line argument, and Linux caps a single argument at 128 KiB.
 * Rule and journey files are a few KiB each; a project near this limit has outgrown JSON-in-git anyway.
 */
export const MAX_BAKED_PROJECT_BYTES = 120 * 1024;

export class ProjectTooLargeError extends Error {
  override readonly name = 'ProjectTooLargeError';
  constructor(bytes: number) {
    super(`StrataFunction: rules/ and journeys/ add up to ${bytes} bytes; at most ${MAX_BAKED_PROJECT_BYTES} can be baked into a function`);
  }
}

/** The esbuild `define` value for the project files: a JSON object literal. */
export function projectFilesDefine(files: ProjectFiles): Record<string, string> {
  const json = JSON.stringify(files);
  const bytes = Buffer.byteLength(json, 'utf8');
  if (bytes > MAX_BAKED_PROJECT_BYTES) throw new ProjectTooLargeError(bytes);
  return { [PROJECT_FILES_GLOBAL]: json };
}

export interface StrataFunctionProps {
  /** The repository root: handlers live under functions/handlers, and package-lock.json sits here. */
  projectRoot: string;
  /** The handler module, relative to functions/handlers, without extension (e.g. "ingest"). */
  handlerName: string;
  description: string;
  projectFiles: ProjectFiles;
  logRetention: RetentionDays;
  timeout: Duration;
  memorySize: number;
  /** The CloudWatch namespace of the handler's own metrics, unique to the stack (see stage-names.ts). */
  metricsNamespace: string;
}

export class StrataFunction extends Construct {
  readonly function: NodejsFunction;
  readonly role: Role;
  readonly logGroup: LogGroup;

  constructor(scope: Construct, id: string, props: StrataFunctionProps) {
    super(scope, id);
    this.logGroup = new LogGroup(this, 'Logs', { retention: props.logRetention });
    // An explicit role with only what this function needs: no AWSLambdaBasicExecutionRole (a managed policy whose
    // log permissions cover every log group), just write access to its own log group.
    this.role = new Role(this, 'Role', {
      assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
      description: `Runs the Strata ${props.handlerName} function`,
    });
    this.logGroup.grantWrite(this.role);
    this.function = new NodejsFunction(this, 'Function', {
      entry: join(props.projectRoot, 'functions', 'handlers', `${props.handlerName}.ts`),
      handler: 'handler',
      projectRoot: props.projectRoot,
      depsLockFilePath: join(props.projectRoot, 'package-lock.json'),
      description: props.description,
      runtime: FUNCTION_RUNTIME,
      architecture: Architecture.ARM_64,
      memorySize: props.memorySize,
      timeout: props.timeout,
      role: this.role,
      logGroup: this.logGroup,
      loggingFormat: LoggingFormat.JSON,
      environment: { [ENV.metricsNamespace]: props.metricsNamespace },
      bundling: {
        forceDockerBundling: false,
        minify: true,
        sourceMap: false,
        format: OutputFormat.CJS,
        // The Lambda Node.js runtime ships AWS SDK v3; bundling our own copy would more than double the bundle
        // (about 650 KB minified for four clients and smithy), and the ingest bundle must stay under 600 KB.
        externalModules: ['@aws-sdk/*'],
        define: projectFilesDefine(props.projectFiles),
      },
    });
  }
}
