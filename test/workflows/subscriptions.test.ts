/**
 * FHIR R4 Subscription with a rest-hook channel (issue 12; CONTRACT section 5):
 * https://hl7.org/fhir/R4/subscription.html — status handling, criteria, channel.payload and channel.header.
 * https://www.standardwebhooks.com/ — the signature on every POST.
 * A real HTTP receiver on 127.0.0.1, allow-listed (SUBSCRIPTION_ENDPOINT_ALLOWLIST), and the server's own outbox
 * worker delivering; both databases.
 */
import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { adminToken } from '../auth/helpers';
import type { TestServer } from '../helpers/server';
import { enqueue } from '../../src/workflows/outbox/enqueue';
import { NOTIFY_ATTEMPTS_IN_TESTS, startSubscriptionServer, subscriptionsIdle, waitFor, type Receiver, type SubscriptionTestServer } from './subscriptionSupport';

const SECRET_EXTENSION = 'http://fhir.healthmed.com.br/StructureDefinition/subscription-secret';

let t: SubscriptionTestServer;
let server: TestServer;
let receiver: Receiver;

beforeAll(async () => {
  t = await startSubscriptionServer();
  ({ server, receiver } = t);
});
afterAll(async () => {
  await t.close();
});

const unique = () => `Fam${randomBytes(5).toString('hex')}`;
const patient = (family: string) => ({ resourceType: 'Patient', name: [{ family, given: ['Ana'] }] });
const asOwner = (token: string) => ({ authorization: `Bearer ${token}` });

function subscription(criteria: string, channel: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return { resourceType: 'Subscription', status: 'requested', reason: 'tests', criteria, channel: { type: 'rest-hook', ...channel }, ...extra };
}

/** Creates a Subscription and waits until the server made it active; returns its id and signing secret. */
async function activeSubscription(body: Record<string, unknown>, headers: Record<string, string> = {}): Promise<{ id: string; secret: string }> {
  const res = await server.request('POST', '/fhir/Subscription', body, headers);
  expect(res.status).toBe(201);
  const secret = res.body.extension?.find((e: { url: string }) => e.url === SECRET_EXTENSION)?.valueString;
  await waitFor('the Subscription to be active', async () => (await server.request('GET', `/fhir/Subscription/${res.body.id}`)).body.status === 'active');
  return { id: res.body.id, secret };
}

const getSubscription = async (id: string) => (await server.request('GET', `/fhir/Subscription/${id}`)).body;

describe('Subscription status and secret (https://hl7.org/fhir/R4/subscription.html#status)', () => {
  test('a create is requested; its answer alone carries the secret; the server makes it active', async () => {
    const res = await server.request('POST', '/fhir/Subscription', subscription(`Patient?family=${unique()}`, { endpoint: `${receiver.base}/status` }, { status: 'active' }));
    expect(res.status).toBe(201);
    // the client asked for active: the server decides, and starts at requested
    expect(res.body.status).toBe('requested');
    const secret = res.body.extension.find((e: { url: string }) => e.url === SECRET_EXTENSION);
    expect(secret.valueString).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    const id = res.body.id;
    await waitFor('active', async () => (await getSubscription(id)).status === 'active');
    const read = await getSubscription(id);
    expect(read.extension).toBeUndefined();
    expect(read.error).toBeUndefined();
    const v1 = await server.request('GET', `/fhir/Subscription/${id}/_history/1`);
    expect(v1.body.status).toBe('requested');
    expect(v1.body.extension).toBeUndefined();
    expect(JSON.stringify((await server.request('GET', `/fhir/Subscription?_id=${id}`)).body)).not.toContain('whsec_');
  });

  test('a client chooses its own secret, or replaces it, in the extension; it is never stored in the resource', async () => {
    const chosen = `whsec_${randomBytes(32).toString('base64')}`;
    const family = unique();
    const { id } = await activeSubscription(
      subscription(`Patient?family=${family}`, { endpoint: `${receiver.base}/chosen` }, { extension: [{ url: SECRET_EXTENSION, valueString: chosen }] }),
    );
    expect((await getSubscription(id)).extension).toBeUndefined();
    await server.request('POST', '/fhir/Patient', patient(family));
    const [first] = await waitFor('a notification', () => receiver.to('/chosen').length === 1 && receiver.to('/chosen'));
    expect(() => new Webhook(chosen).verify(first.body, first.headers as Record<string, string>)).not.toThrow();

    const rotated = `whsec_${randomBytes(24).toString('base64')}`;
    const current = await getSubscription(id);
    const put = await server.request('PUT', `/fhir/Subscription/${id}`, { ...current, extension: [{ url: SECRET_EXTENSION, valueString: rotated }] });
    expect(put.status).toBe(200);
    expect(put.body.status).toBe('active');
    expect(put.body.extension).toBeUndefined();
    await server.request('POST', '/fhir/Patient', patient(family));
    const second = await waitFor('a second notification', () => receiver.to('/chosen')[1]);
    expect(() => new Webhook(rotated).verify(second.body, second.headers as Record<string, string>)).not.toThrow();
    expect(() => new Webhook(chosen).verify(second.body, second.headers as Record<string, string>)).toThrow();

    const weak = await server.request('PUT', `/fhir/Subscription/${id}`, { ...current, extension: [{ url: SECRET_EXTENSION, valueString: 'whsec_c2hvcnQ=' }] });
    expect(weak.status).toBe(422);
    expect(weak.body.issue[0].diagnostics).toContain('24 to 64');
  });

  test('status error is the server’s; off and requested are the client’s', async () => {
    const { id } = await activeSubscription(subscription(`Patient?family=${unique()}`, { endpoint: `${receiver.base}/statuses` }));
    const current = await getSubscription(id);
    const error = await server.request('PUT', `/fhir/Subscription/${id}`, { ...current, status: 'error', error: 'set by me' });
    expect(error.status).toBe(422);
    expect(error.body.issue[0]).toMatchObject({ code: 'processing', expression: ['Subscription.status'] });
    const created = await server.request('POST', '/fhir/Subscription', subscription(`Patient?family=${unique()}`, { endpoint: `${receiver.base}/statuses` }, { status: 'error' }));
    expect(created.status).toBe(422);

    const off = await server.request('PUT', `/fhir/Subscription/${id}`, { ...current, status: 'off', error: 'ignored' });
    expect(off.status).toBe(200);
    expect(off.body.status).toBe('off');
    expect(off.body.error).toBeUndefined();
    const again = await server.request('PUT', `/fhir/Subscription/${id}`, { ...off.body, status: 'active' });
    expect(again.body.status).toBe('requested');
    await waitFor('active again', async () => (await getSubscription(id)).status === 'active');
    // a new endpoint is checked again
    const moved = await server.request('PUT', `/fhir/Subscription/${id}`, { ...(await getSubscription(id)), channel: { type: 'rest-hook', endpoint: `${receiver.base}/moved` } });
    expect(moved.body.status).toBe('requested');
  });
});

describe('rest-hook notifications', () => {
  test('a matching write is POSTed, signed (Standard Webhooks), with channel.header; others are not', async () => {
    const family = unique();
    const { id, secret } = await activeSubscription(
      subscription(`Patient?family=${family}`, {
        endpoint: `${receiver.base}/match?x=1`,
        payload: 'application/fhir+json',
        header: ['Authorization: Bearer receiver-token', 'X-Tenant: clinic-7'],
      }),
    );
    const created = await server.request('POST', '/fhir/Patient', patient(family));
    expect(created.status).toBe(201);
    const [n] = await waitFor('the notification', () => receiver.to('/match').length > 0 && receiver.to('/match'));
    expect(n.headers['content-type']).toBe('application/fhir+json');
    expect(n.headers.authorization).toBe('Bearer receiver-token');
    expect(n.headers['x-tenant']).toBe('clinic-7');
    expect(n.headers['webhook-id']).toMatch(/^msg_/);
    const verified = new Webhook(secret).verify(n.body, n.headers as Record<string, string>) as { resourceType: string; id: string; meta: { versionId: string } };
    expect(verified).toMatchObject({ resourceType: 'Patient', id: created.body.id, meta: { versionId: '1' } });
    // a replayed notification with a changed body fails verification
    expect(() => new Webhook(secret).verify(n.body.replace('Ana', 'Bia'), n.headers as Record<string, string>)).toThrow();

    await server.request('POST', '/fhir/Patient', patient(unique()));
    const updated = await server.request('PUT', `/fhir/Patient/${created.body.id}`, { ...created.body, gender: 'female' });
    expect(updated.status).toBe(200);
    const second = await waitFor('the update', () => receiver.to('/match')[1]);
    expect(JSON.parse(second.body)).toMatchObject({ id: created.body.id, gender: 'female', meta: { versionId: '2' } });
    expect(second.headers['webhook-id']).not.toBe(n.headers['webhook-id']);

    // a transaction Bundle is a write too; a delete is not a notification (it matches no search)
    const bundle = await server.request('POST', '/fhir', {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [{ fullUrl: 'urn:uuid:5d0f6c0e-4a39-4bd7-9a5b-0c4b6a8f7d21', resource: patient(family), request: { method: 'POST', url: 'Patient' } }],
    });
    expect(bundle.status).toBe(200);
    await waitFor('the transaction', () => receiver.to('/match')[2]);
    expect((await server.request('DELETE', `/fhir/Patient/${created.body.id}`)).status).toBe(200);
    await subscriptionsIdle(server);
    expect(receiver.to('/match')).toHaveLength(3);
    expect(receiver.to('/match').every((r) => r.headers['x-tenant'] === 'clinic-7')).toBe(true);
    expect((await getSubscription(id)).status).toBe('active');
  });

  test('plain creates grouped into one statement are each an event', async () => {
    const family = unique();
    await activeSubscription(subscription(`Patient?family=${family}`, { endpoint: `${receiver.base}/grouped` }));
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => server.request('POST', '/fhir/Patient', patient(i % 2 === 0 ? family : unique()))));
    expect(results.every((r) => r.status === 201)).toBe(true);
    await waitFor('six notifications', () => receiver.to('/grouped').length >= 6);
    await subscriptionsIdle(server);
    expect(receiver.to('/grouped')).toHaveLength(6);
  });

  test('without channel.payload a notification has no body', async () => {
    const family = unique();
    const { secret } = await activeSubscription(subscription(`Patient?family=${family}`, { endpoint: `${receiver.base}/empty` }));
    await server.request('POST', '/fhir/Patient', patient(family));
    const [n] = await waitFor('the notification', () => receiver.to('/empty').length > 0 && receiver.to('/empty'));
    expect(n.body).toBe('');
    expect(n.headers['content-type']).toBeUndefined();
    expect(new Webhook(secret).verify(n.body, n.headers as Record<string, string>)).toBeUndefined();
  });

  test('a notification carries only what its owner may read, decided at delivery', async () => {
    // may search Patients (so the criteria match) but not read them
    const token = await adminToken(server, 'system/Subscription.cruds system/Patient.s');
    const family = unique();
    const { secret } = await activeSubscription(subscription(`Patient?family=${family}`, { endpoint: `${receiver.base}/unreadable`, payload: 'application/fhir+json' }), asOwner(token));
    await server.request('POST', '/fhir/Patient', patient(family));
    const [n] = await waitFor('the notification', () => receiver.to('/unreadable').length > 0 && receiver.to('/unreadable'));
    expect(n.body).toBe('');
    expect(n.headers['content-type']).toBeUndefined();
    expect(() => new Webhook(secret).verify(n.body, n.headers as Record<string, string>)).not.toThrow();
  });

  test('an owner without search on the type cannot subscribe to it; what it cannot search never matches', async () => {
    const noSearch = await adminToken(server, 'system/Subscription.cruds system/Patient.r');
    const refused = await server.request('POST', '/fhir/Subscription', subscription('Patient?family=x', { endpoint: `${receiver.base}/nosearch` }), asOwner(noSearch));
    expect(refused.status).toBe(403);
    expect(refused.body.issue[0].code).toBe('forbidden');

    // v2 constraint: searches only female Patients
    const constrained = await adminToken(server, 'system/Subscription.cruds system/Patient.rs?gender=female');
    const family = unique();
    await activeSubscription(subscription(`Patient?family=${family}`, { endpoint: `${receiver.base}/constrained`, payload: 'application/fhir+json' }), asOwner(constrained));
    await server.request('POST', '/fhir/Patient', { ...patient(family), gender: 'male' });
    const female = await server.request('POST', '/fhir/Patient', { ...patient(family), gender: 'female' });
    await waitFor('the notification', () => receiver.to('/constrained').length > 0);
    await subscriptionsIdle(server);
    expect(receiver.to('/constrained')).toHaveLength(1);
    expect(JSON.parse(receiver.to('/constrained')[0].body).id).toBe(female.body.id);
  });

  test('a receiver failing 3 times then succeeding gets exactly one successful delivery, always with one webhook-id', async () => {
    receiver.answers.set('/flaky', (n) => (n <= 3 ? 503 : 200));
    const family = unique();
    const { id } = await activeSubscription(subscription(`Patient?family=${family}`, { endpoint: `${receiver.base}/flaky`, payload: 'application/fhir+json' }));
    await server.request('POST', '/fhir/Patient', patient(family));
    await waitFor('the fourth attempt', () => receiver.to('/flaky').length >= 4);
    await subscriptionsIdle(server);
    const attempts = receiver.to('/flaky');
    expect(attempts.map((a) => a.status)).toEqual([503, 503, 503, 200]);
    expect(new Set(attempts.map((a) => a.headers['webhook-id'])).size).toBe(1);
    expect(new Set(attempts.map((a) => a.body)).size).toBe(1);
    expect((await getSubscription(id)).status).toBe('active');
  });

  test('repeated failures: the Subscription becomes error with Subscription.error, and later writes are not sent', async () => {
    receiver.answers.set('/down', () => 503);
    const family = unique();
    const { id } = await activeSubscription(subscription(`Patient?family=${family}`, { endpoint: `${receiver.base}/down` }));
    await server.request('POST', '/fhir/Patient', patient(family));
    await waitFor('error', async () => (await getSubscription(id)).status === 'error');
    const failed = await getSubscription(id);
    expect(failed.error).toBe(`${NOTIFY_ATTEMPTS_IN_TESTS} attempts to deliver a notification failed; the last: 127.0.0.1:${receiver.port} answered HTTP 503`);
    expect(receiver.to('/down')).toHaveLength(NOTIFY_ATTEMPTS_IN_TESTS);
    const dead = await server.db.query<{ state: string; last_error: string }>(
      `SELECT state, last_error FROM outbox WHERE kind = 'subscription.notify' AND payload->>'subscription' = $1`,
      [id],
    );
    expect(dead.rows).toEqual([{ state: 'dead', last_error: failed.error }]);
    await server.request('POST', '/fhir/Patient', patient(family));
    await subscriptionsIdle(server);
    expect(receiver.to('/down')).toHaveLength(NOTIFY_ATTEMPTS_IN_TESTS);
  });

  test('off stops deliveries, also of notifications already queued', async () => {
    const family = unique();
    const { id } = await activeSubscription(subscription(`Patient?family=${family}`, { endpoint: `${receiver.base}/off` }));
    await server.request('POST', '/fhir/Patient', patient(family));
    await waitFor('the first notification', () => receiver.to('/off').length === 1);
    const off = await server.request('PUT', `/fhir/Subscription/${id}`, { ...(await getSubscription(id)), status: 'off' });
    expect(off.status).toBe(200);
    const written = await server.request('POST', '/fhir/Patient', patient(family));
    // as if it had been queued (or was waiting for a retry) when the Subscription was turned off
    await enqueue(server.db, [{ kind: 'subscription.notify', payload: { subscription: id, type: 'Patient', id: written.body.id, version: 1 } }]);
    await subscriptionsIdle(server);
    expect(receiver.to('/off')).toHaveLength(1);
    const rows = await server.db.query<{ state: string }>(`SELECT state FROM outbox WHERE kind = 'subscription.notify' AND payload->>'subscription' = $1 ORDER BY id`, [id]);
    expect(rows.rows.map((r) => r.state)).toEqual(['done', 'done']);
  });

  test('writes of a type no Subscription watches are no events; a deleted Subscription stops watching', async () => {
    const events = async (type: string) =>
      Number((await server.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM outbox WHERE kind = 'subscription.event' AND payload->>'type' = $1`, [type])).rows[0].n);
    const device = { resourceType: 'Device', status: 'active' };
    await server.request('POST', '/fhir/Device', device);
    expect(await events('Device')).toBe(0);
    const { id } = await activeSubscription(subscription('Device?status=active', { endpoint: `${receiver.base}/device` }));
    await server.request('POST', '/fhir/Device', device);
    expect(await events('Device')).toBe(1);
    await waitFor('the notification', () => receiver.to('/device').length === 1);
    expect((await server.request('DELETE', `/fhir/Subscription/${id}`)).status).toBe(200);
    await server.request('POST', '/fhir/Device', device);
    expect(await events('Device')).toBe(1);
    const left = await server.db.query('SELECT 1 FROM subscription_owner WHERE subscription_id = $1 UNION ALL SELECT 1 FROM subscription_topic WHERE subscription_id = $1', [id]);
    expect(left.rows).toHaveLength(0);
  });

  test('a transaction that fails leaves no event behind', async () => {
    const family = unique();
    await activeSubscription(subscription(`Patient?family=${family}`, { endpoint: `${receiver.base}/rolledback` }));
    const before = Number((await server.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM outbox WHERE kind = 'subscription.event'`)).rows[0].n);
    const res = await server.request('POST', '/fhir', {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { resource: patient(family), request: { method: 'POST', url: 'Patient' } },
        { resource: { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: 'Patient/does-not-exist' } }, request: { method: 'POST', url: 'Observation' } },
      ],
    });
    expect(res.status).toBeGreaterThanOrEqual(400);
    const after = Number((await server.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM outbox WHERE kind = 'subscription.event'`)).rows[0].n);
    expect(after).toBe(before);
    await subscriptionsIdle(server);
    expect(receiver.to('/rolledback')).toHaveLength(0);
  });
});
