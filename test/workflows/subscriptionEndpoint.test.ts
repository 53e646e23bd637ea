/**
 * Where a rest-hook may point, and what a Subscription may ask (issue 12; CONTRACT section 1,
 * SUBSCRIPTION_ENDPOINT_ALLOWLIST): https to public addresses, anything else only for allow-listed hosts, judged
 * on write (422 saying why), on activation after DNS resolution, and at connect time (request-filtering-agent).
 * https://hl7.org/fhir/R4/subscription.html — channel.type, channel.payload, channel.header, criteria.
 */
import type { TestServer } from '../helpers/server';
import { checkEndpoint, EndpointRefused } from '../../src/workflows/subscriptions/endpoint';
import { startSubscriptionServer, subscriptionsIdle, waitFor, type Receiver, type SubscriptionTestServer } from './subscriptionSupport';

let t: SubscriptionTestServer;
let server: TestServer;
let receiver: Receiver;

beforeAll(async () => {
  t = await startSubscriptionServer();
  ({ server, receiver } = t);
  t.dns.set('hooks.example.com', '93.184.215.14');
});
afterAll(async () => {
  await t.close();
});

function subscription(channel: Record<string, unknown>, criteria = 'Patient?family=Souza') {
  return { resourceType: 'Subscription', status: 'requested', reason: 'tests', criteria, channel: { type: 'rest-hook', ...channel } };
}

const create = (body: unknown) => server.request('POST', '/fhir/Subscription', body);
const getSubscription = async (id: string) => (await server.request('GET', `/fhir/Subscription/${id}`)).body;

describe('the endpoint policy on write', () => {
  test.each([
    ['http://hooks.example.com/fhir', 'must use https (plain http only for hosts in SUBSCRIPTION_ENDPOINT_ALLOWLIST; hooks.example.com is not)'],
    ['https://10.0.0.1/hook', '10.0.0.1 is not a public address (private;'],
    ['https://192.168.1.20/hook', '192.168.1.20 is not a public address (private;'],
    ['https://127.0.0.1/hook', '127.0.0.1 is not a public address (loopback;'],
    ['https://2130706433/hook', '127.0.0.1 is not a public address (loopback;'],
    ['https://169.254.169.254/latest/meta-data', '169.254.169.254 is not a public address (link-local;'],
    ['https://[::1]/hook', '::1 is not a public address (loopback;'],
    ['https://[::ffff:127.0.0.1]/hook', 'is not a public address (IPv4-mapped;'],
    ['https://0.0.0.0/hook', '0.0.0.0 is not a public address (unspecified;'],
    ['https://localhost/hook', 'localhost is a local host name'],
    ['https://api.localhost/hook', 'api.localhost is a local host name'],
    ['https://metadata/computeMetadata', 'metadata is a local host name'],
    ['https://printer.local/hook', 'printer.local is a local host name'],
    ['https://user:secret@hooks.example.com/hook', 'must not carry credentials'],
    ['ftp://hooks.example.com/hook', 'must be an absolute http(s) URL'],
    ['/relative/hook', 'must be an absolute http(s) URL'],
  ])('%s is refused (422)', async (endpoint, why) => {
    const res = await create(subscription({ endpoint }));
    expect(res.status).toBe(422);
    expect(res.body.issue[0]).toMatchObject({ severity: 'error', code: 'processing', expression: ['Subscription.channel.endpoint'] });
    expect(res.body.issue[0].diagnostics).toContain(why);
  });

  test('the allow-list is by host, or by host and port', () => {
    expect(checkEndpoint('http://127.0.0.1:8080/x', ['127.0.0.1:8080'])).toMatchObject({ allowListed: true });
    expect(() => checkEndpoint('http://127.0.0.1:8081/x', ['127.0.0.1:8080'])).toThrow(EndpointRefused);
    expect(checkEndpoint('http://hooks.internal/x', ['hooks.internal'])).toMatchObject({ allowListed: true });
    expect(checkEndpoint('https://hooks.internal:8443/x', ['HOOKS.internal'])).toMatchObject({ allowListed: true });
    expect(checkEndpoint('http://[::1]:9000/x', ['[::1]:9000'])).toMatchObject({ allowListed: true });
    expect(checkEndpoint('https://hooks.example.com/x', ['hooks.example.com:443'])).toMatchObject({ allowListed: true });
    expect(checkEndpoint('https://hooks.example.com/x', [])).toMatchObject({ allowListed: false });
  });

  test('an allow-listed receiver takes plain http on loopback; another port of it does not', async () => {
    expect((await create(subscription({ endpoint: `${receiver.base}/listed` }))).status).toBe(201);
    const other = await create(subscription({ endpoint: `http://127.0.0.1:${receiver.port === 65535 ? 1 : receiver.port + 1}/hook` }));
    expect(other.status).toBe(422);
  });

  test('https to a public host is accepted, and made active once its name resolves to public addresses only', async () => {
    const res = await create(subscription({ endpoint: 'https://hooks.example.com/fhir/notify' }));
    expect(res.status).toBe(201);
    expect(res.body.status).toBe('requested');
    await waitFor('active', async () => (await getSubscription(res.body.id)).status === 'active');
  });
});

describe('the endpoint policy after DNS resolution', () => {
  test('a name that is not allow-listed and resolves to 127.0.0.1 is refused on activation: status error', async () => {
    t.dns.set('innocent.example.net', '127.0.0.1');
    const res = await create(subscription({ endpoint: `https://innocent.example.net:${receiver.port}/rebind` }));
    expect(res.status).toBe(201);
    await waitFor('error', async () => (await getSubscription(res.body.id)).status === 'error');
    expect((await getSubscription(res.body.id)).error).toBe(
      'Subscription.channel.endpoint innocent.example.net resolves to 127.0.0.1, not a public address (loopback; allowed only for hosts in SUBSCRIPTION_ENDPOINT_ALLOWLIST)',
    );
  });

  test('a name that resolved publicly at activation and resolves to 127.0.0.1 at delivery (DNS rebinding) is refused at connect time', async () => {
    t.dns.set('rebinding.example.net', '93.184.215.14');
    const family = `Rebind${Date.now()}`;
    const res = await create(subscription({ endpoint: `http://rebinding.example.net:${receiver.port}/rebound`, payload: 'application/fhir+json' }, `Patient?family=${family}`));
    // plain http is not allowed for it either: use https, which the agent refuses before any TLS
    expect(res.status).toBe(422);
    const https = await create(subscription({ endpoint: `https://rebinding.example.net:${receiver.port}/rebound`, payload: 'application/fhir+json' }, `Patient?family=${family}`));
    expect(https.status).toBe(201);
    await waitFor('active', async () => (await getSubscription(https.body.id)).status === 'active');
    t.dns.set('rebinding.example.net', '127.0.0.1');
    await server.request('POST', '/fhir/Patient', { resourceType: 'Patient', name: [{ family }] });
    await waitFor('error', async () => (await getSubscription(https.body.id)).status === 'error');
    expect((await getSubscription(https.body.id)).error).toBe(
      `Subscription.channel.endpoint: rebinding.example.net:${receiver.port} resolves to an address that is not public (not in SUBSCRIPTION_ENDPOINT_ALLOWLIST)`,
    );
    await subscriptionsIdle(server);
    expect(receiver.to('/rebound')).toHaveLength(0);
  });

  test('a name that does not resolve: status error saying so', async () => {
    t.dns.delete('nowhere.invalid');
    const res = await create(subscription({ endpoint: 'https://nowhere.invalid/hook' }));
    expect(res.status).toBe(201);
    await waitFor('error', async () => (await getSubscription(res.body.id)).status === 'error');
    expect((await getSubscription(res.body.id)).error).toBe('Subscription.channel.endpoint nowhere.invalid does not resolve');
  });
});

describe('what a Subscription may ask', () => {
  const endpoint = () => `${receiver.base}/asks`;

  test.each(['websocket', 'email', 'sms', 'message'])('channel.type %s: 422 not-supported', async (type) => {
    const res = await create(subscription({ type, endpoint: endpoint() }));
    expect(res.status).toBe(422);
    expect(res.body.issue[0]).toMatchObject({ code: 'not-supported', expression: ['Subscription.channel.type'] });
  });

  test.each(['application/fhir+xml', 'text/plain', 'application/json'])('channel.payload %s: 422 not-supported', async (payload) => {
    const res = await create(subscription({ endpoint: endpoint(), payload }));
    expect(res.status).toBe(422);
    expect(res.body.issue[0]).toMatchObject({ code: 'not-supported', expression: ['Subscription.channel.payload'] });
  });

  test.each([
    ['Patient', 201, ''],
    ['Appointment?status=booked&date=ge2030-01-01', 201, ''],
    ['Observation?subject:Patient.family=Souza', 201, ''],
    ['patient?name=x', 422, 'must be a search on one resource type'],
    ['/Patient?name=x', 422, 'must be a search on one resource type'],
    ['Pationt?name=x', 422, 'Pationt, which is not an R4 resource type'],
    ['Patient?colour=blue', 422, 'is not a valid search'],
    ['Patient?birthdate=yesterday', 422, 'is not a valid search'],
    ['Patient?_sort=name', 422, 'cannot use _sort'],
    ['Patient?_include=Patient:organization', 422, 'cannot use _include'],
    ['Patient?_count=1', 422, 'cannot use _count'],
  ])('criteria %s: %s', async (criteria, status, why) => {
    const res = await create(subscription({ endpoint: endpoint() }, criteria));
    expect(res.status).toBe(status);
    if (status === 422) {
      expect(res.body.issue[0].expression).toEqual(['Subscription.criteria']);
      expect(res.body.issue[0].diagnostics).toContain(why);
    }
  });

  test.each([
    ['Webhook-Signature: v1,forged', 'sets Webhook-Signature, which the server sets itself'],
    ['content-type: text/plain', 'sets content-type, which the server sets itself'],
    ['Host: elsewhere.example.com', 'sets Host, which the server sets itself'],
    ['no colon here', 'must be one HTTP header line'],
    ['X-Evil: a\r\nX-Injected: b', 'must be one HTTP header line'],
    ['Bad Name: x', 'must be one HTTP header line'],
    ['X-Name: Jos\u00e9', 'must be one HTTP header line'],
  ])('channel.header %j: 422', async (line, why) => {
    const res = await create(subscription({ endpoint: endpoint(), header: [line] }));
    expect(res.status).toBe(422);
    expect(res.body.issue[0].diagnostics).toContain(why);
  });

  test('a Subscription without reason is refused by validation (R4: reason 1..1), after the rules', async () => {
    const { reason: _reason, ...body } = subscription({ endpoint: endpoint() });
    const res = await create(body);
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
  });
});
