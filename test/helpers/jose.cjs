// jose 6 ships ES modules only. Node >= 20.19 (what production runs) require()s them natively, but Jest 29's
// module registry refuses to while --experimental-vm-modules is on, so tests load jose with Node's own require.
module.exports = process.getBuiltinModule('node:module').createRequire(__filename)('jose');
