/**
 * Structured JSON logs (pino). Never log resource bodies, query parameters or tokens: they hold PHI or secrets.
 */
import pino from 'pino';

export const logger = pino({
  level: process.env.LOG_LEVEL || (process.env.NODE_ENV === 'test' || process.env.JEST_WORKER_ID ? 'silent' : 'info'),
  base: undefined,
  redact: ['req.headers.authorization', 'req.headers.cookie'],
});
