/**
 * The mail seam with a real SMTP server (smtp-server, started here): with SMTP_URL set, a password reset
 * request sends the reset link by SMTP to the account's address.
 */
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { startServer, type TestServer } from '../helpers/server';
import { json, signUp } from './helpers';

interface Received {
  from: string;
  to: string[];
  data: string;
}

let smtp: SMTPServer;
let server: TestServer;
const received: Received[] = [];

beforeAll(async () => {
  smtp = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        received.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          data: Buffer.concat(chunks).toString('utf8'),
        });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', resolve));
  const port = (smtp.server.address() as AddressInfo).port;
  server = await startServer({ SMTP_URL: `smtp://127.0.0.1:${port}`, MAIL_FROM: 'Health&Med <no-reply@healthmed.test>' });
});
afterAll(async () => {
  await server.close();
  await new Promise<void>((resolve) => smtp.close(() => resolve()));
});

test('a password reset e-mail goes out over SMTP with a single-use link', async () => {
  const person = await signUp(server);
  const res = await json(server, '/auth/password/forgot', { email: person.email });
  expect(res.status).toBe(202);
  for (let i = 0; i < 50 && received.length === 0; i++) await new Promise((r) => setTimeout(r, 100));
  expect(received).toHaveLength(1);
  expect(received[0].to).toEqual([person.email]);
  expect(received[0].from).toBe('no-reply@healthmed.test');
  const body = received[0].data.replace(/=\r?\n/g, '').replace(/=3D/g, '=');
  expect(body).toContain(`${server.baseUrl}/auth/password/reset?token=`);
});
