import base from '../../tsup.library';

// `import.meta.url` (which finds the addon next to dist/) is shimmed in the CommonJS build.
export default { ...base, shims: true };
