/**
 * Preloaded into our server by `npm run bench -- --explain` (node -r bench/sql-capture.js), only when the
 * server does not expose `explainSearch`: records the SQL text and parameters of every statement run while
 * answering an HTTP request that carries `x-bench-capture: <token>`, as JSON lines in $BENCH_SQL_CAPTURE,
 * so the bench can EXPLAIN exactly what the server ran. Requests without the header are untouched.
 * Synthetic benchmark data only: never load this in a deployment (parameters are patient data).
 */
'use strict';
const { AsyncLocalStorage } = require('node:async_hooks');
const { appendFileSync } = require('node:fs');
const http = require('node:http');
const pg = require('pg');

const file = process.env.BENCH_SQL_CAPTURE;
if (file) {
  const als = new AsyncLocalStorage();

  const emit = http.Server.prototype.emit;
  http.Server.prototype.emit = function (event, req, ...rest) {
    const token = event === 'request' ? req.headers['x-bench-capture'] : undefined;
    if (typeof token === 'string') return als.run(token, () => emit.call(this, event, req, ...rest));
    return emit.call(this, event, req, ...rest);
  };

  const query = pg.Client.prototype.query;
  pg.Client.prototype.query = function (config, values, callback) {
    const token = als.getStore();
    if (token !== undefined && config) {
      const text = typeof config === 'string' ? config : config.text;
      const params = Array.isArray(values) ? values : config.values;
      if (typeof text === 'string') appendFileSync(file, JSON.stringify({ token, text, values: params ?? [] }) + '\n');
    }
    return query.apply(this, arguments);
  };
}
