// The package's entry point: Promise.withResolvers first (Node 22 has it; Node 20 does not), then the upstream
// build as it was published. ES modules evaluate their imports in order, so the build always finds it.
import './with-resolvers.js';
export * from './build/main.node.esm.js';
