/**
 * What the CapabilityStatement names resolves: each project operation's OperationDefinition canonical is readable at
 * `[base]/OperationDefinition/[last segment]` and valid; the project extensions have definitions with snapshots
 * (the Subscription signing secret among them). https://hl7.org/fhir/R4/capabilitystatement.html
 */
import * as fs from 'fs';
import * as path from 'path';
import type { StructureDefinition } from '@medplum/fhirtypes';
import { baseDefinitions } from '../../src/fhir/definitions';
import { generateSnapshot } from '../../src/fhir/validation/snapshot';
import { loadValidator } from '../../src/fhir/validation';
import { SECRET_EXTENSION } from '../../src/workflows/subscriptions/signing';
import { startServer, type TestServer } from '../helpers/server';

let s: TestServer;
beforeAll(async () => {
  s = await startServer();
});
afterAll(async () => {
  await s.close();
});

const PROJECT = 'http://fhir.healthmed.com.br/OperationDefinition/';

test("every project operation's definition resolves on the server, describes the operation and is valid", async () => {
  const cs = (await s.request('GET', '/fhir/metadata')).body;
  const ops: { name: string; definition: string }[] = [...cs.rest[0].operation, ...cs.rest[0].resource.flatMap((r: { operation?: unknown[] }) => r.operation ?? [])];
  const project = [...new Map(ops.filter((o) => o.definition.startsWith(PROJECT)).map((o) => [o.definition, o])).values()];
  expect(project.map((o) => o.name).sort()).toEqual(['generate-slots', 'join', 'reindex']);
  for (const op of project) {
    const id = op.definition.slice(PROJECT.length);
    const res = await s.request('GET', `/fhir/OperationDefinition/${id}`);
    expect([id, res.status]).toEqual([id, 200]);
    expect(res.body).toMatchObject({ resourceType: 'OperationDefinition', id, url: op.definition, code: op.name, status: 'active', kind: 'operation' });
    expect(res.headers.get('etag')).toBe('W/"1"');
    const checked = await s.request('POST', '/fhir/OperationDefinition/$validate', res.body);
    expect([id, checked.body.issue.filter((i: { severity: string }) => i.severity === 'error')]).toEqual([id, []]);
  }
  const generate = (await s.request('GET', '/fhir/OperationDefinition/Schedule-generate-slots')).body;
  expect(generate).toMatchObject({ resource: ['Schedule'], system: false, type: false, instance: true });
  expect(generate.parameter.map((p: { name: string; use: string }) => `${p.use} ${p.name}`)).toEqual(expect.arrayContaining(['in start', 'in end']));
  // an id that is no built-in is looked up as usual
  expect((await s.request('GET', '/fhir/OperationDefinition/no-such-operation')).status).toBe(404);
});

describe('the Subscription signing secret extension', () => {
  const file = path.resolve(__dirname, '../../fhir-profiles/StructureDefinition-subscription-secret.json');
  const sd = JSON.parse(fs.readFileSync(file, 'utf8')) as StructureDefinition;
  const base = (url: string) => (baseDefinitions().types.entry ?? []).map((e) => e.resource as StructureDefinition).find((d) => d?.url === url);

  test('is defined with the snapshot generated from its differential, on Subscription', () => {
    expect(sd.url).toBe(SECRET_EXTENSION);
    expect(sd.context).toEqual([{ type: 'element', expression: 'Subscription' }]);
    expect(generateSnapshot({ ...sd, snapshot: undefined }, base)).toEqual(sd.snapshot?.element);
  });

  test('the validator holds a value to its shape, and the CapabilityStatement names it on Subscription', async () => {
    const validator = loadValidator(path.resolve(__dirname, '../../fhir-profiles'));
    const subscription = (value: string) => ({
      resourceType: 'Subscription',
      status: 'requested',
      reason: 'test',
      criteria: 'Appointment?status=booked',
      channel: { type: 'rest-hook', endpoint: 'https://ehr.example.org/hook', payload: 'application/fhir+json' },
      extension: [{ url: SECRET_EXTENSION, valueString: value }],
    });
    const errors = (value: string) => validator.validate(subscription(value) as never).filter((i) => i.severity === 'error').map((i) => i.diagnostics);
    expect(errors(`whsec_${Buffer.alloc(32, 7).toString('base64')}`)).toEqual([]);
    expect(errors('not-a-secret')).toEqual([expect.stringContaining('hm-subscription-secret-1')]);
    const cs = (await s.request('GET', '/fhir/metadata')).body;
    expect(cs.rest[0].resource.find((r: { type: string }) => r.type === 'Subscription').documentation).toContain(SECRET_EXTENSION);
  });
});
