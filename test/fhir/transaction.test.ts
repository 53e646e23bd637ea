/**
 * batch and transaction Bundles: https://hl7.org/fhir/R4/http.html#transaction
 */
import { randomUUID } from 'node:crypto';
import { startServer, type TestServer } from '../helpers/server';

let s: TestServer;
beforeAll(async () => {
  s = await startServer();
});
afterAll(async () => {
  await s.close();
});

const mrn = () => ({ system: 'urn:test:mrn', value: randomUUID() });

describe('transaction', () => {
  test('resolves urn:uuid references to the ids the server assigns', async () => {
    const pid = `urn:uuid:${randomUUID()}`;
    const res = await s.request('POST', '/fhir', {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        {
          fullUrl: `urn:uuid:${randomUUID()}`,
          resource: { resourceType: 'Observation', status: 'final', code: { text: 'hr' }, subject: { reference: pid } },
          request: { method: 'POST', url: 'Observation' },
        },
        { fullUrl: pid, resource: { resourceType: 'Patient', gender: 'male' }, request: { method: 'POST', url: 'Patient' } },
      ],
    });
    expect(res.status).toBe(200);
    expect(res.body.type).toBe('transaction-response');
    const [obsEntry, patEntry] = res.body.entry;
    expect(obsEntry.response.status).toBe('201 Created');
    expect(patEntry.response.location).toMatch(/\/fhir\/Patient\/[0-9a-f-]+\/_history\/1$/);
    expect(obsEntry.resource.subject.reference).toBe(`Patient/${patEntry.resource.id}`);
    const stored = await s.request('GET', `/fhir/Observation/${obsEntry.resource.id}`);
    expect(stored.body.subject.reference).toBe(`Patient/${patEntry.resource.id}`);
  });

  test('all or nothing: a failing third entry leaves nothing written', async () => {
    const id1 = mrn();
    const id2 = mrn();
    const res = await s.request('POST', '/fhir', {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { resource: { resourceType: 'Patient', identifier: [id1] }, request: { method: 'POST', url: 'Patient' } },
        { resource: { resourceType: 'Patient', identifier: [id2] }, request: { method: 'POST', url: 'Patient' } },
        { resource: { resourceType: 'Patient', birthDate: 'not-a-date' }, request: { method: 'POST', url: 'Patient' } },
      ],
    });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect(res.body.resourceType).toBe('OperationOutcome');
    expect(res.body.issue[0].diagnostics).toContain('Bundle.entry[2]');
    for (const id of [id1, id2]) {
      const search = await s.request('GET', `/fhir/Patient?identifier=${id.system}|${id.value}`);
      expect(search.body.entry ?? []).toHaveLength(0);
    }
  });

  test('processes DELETE, POST, PUT, GET in the order the spec sets', async () => {
    const existing = (await s.request('POST', '/fhir/Patient', { resourceType: 'Patient', gender: 'female' })).body;
    const putId = `put-${randomUUID()}`;
    const res = await s.request('POST', '/fhir', {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { request: { method: 'GET', url: `Patient/${putId}` } },
        { resource: { resourceType: 'Patient', id: putId, gender: 'male' }, request: { method: 'PUT', url: `Patient/${putId}` } },
        { request: { method: 'DELETE', url: `Patient/${existing.id}` } },
        { resource: { resourceType: 'Patient' }, request: { method: 'POST', url: 'Patient' } },
      ],
    });
    expect(res.status).toBe(200);
    expect(res.body.entry.map((e: { response: { status: string } }) => e.response.status.slice(0, 3))).toEqual(['200', '201', '200', '201']);
    expect(res.body.entry[0].resource.id).toBe(putId); // the GET ran after the PUT
    expect((await s.request('GET', `/fhir/Patient/${existing.id}`)).status).toBe(410);
  });

  test('two entries for the same resource are refused', async () => {
    const p = (await s.request('POST', '/fhir/Patient', { resourceType: 'Patient' })).body;
    const res = await s.request('POST', '/fhir', {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { resource: { ...p, gender: 'male' }, request: { method: 'PUT', url: `Patient/${p.id}` } },
        { request: { method: 'DELETE', url: `Patient/${p.id}` } },
      ],
    });
    expect(res.status).toBe(400);
    expect((await s.request('GET', `/fhir/Patient/${p.id}`)).body.meta.versionId).toBe('1');
  });

  test('conditional create and conditional references inside a transaction', async () => {
    const org = mrn();
    const bundle = (orgName: string) => ({
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        {
          fullUrl: `urn:uuid:${randomUUID()}`,
          resource: { resourceType: 'Organization', identifier: [org], name: orgName },
          request: { method: 'POST', url: 'Organization', ifNoneExist: `identifier=${org.system}|${org.value}` },
        },
      ],
    });
    const first = await s.request('POST', '/fhir', bundle('A'));
    expect(first.body.entry[0].response.status).toBe('201 Created');
    const second = await s.request('POST', '/fhir', bundle('B'));
    expect(second.body.entry[0].response.status).toBe('200 OK');
    expect(second.body.entry[0].resource.id).toBe(first.body.entry[0].resource.id);

    const enc = await s.request('POST', '/fhir', {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        {
          resource: {
            resourceType: 'Encounter',
            status: 'finished',
            class: { code: 'AMB' },
            serviceProvider: { reference: `Organization?identifier=${org.system}|${org.value}` },
          },
          request: { method: 'POST', url: 'Encounter' },
        },
      ],
    });
    expect(enc.status).toBe(200);
    expect(enc.body.entry[0].resource.serviceProvider.reference).toBe(`Organization/${first.body.entry[0].resource.id}`);
  });

  test('a conditional reference that matches nothing fails the transaction', async () => {
    const res = await s.request('POST', '/fhir', {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        {
          resource: { resourceType: 'Encounter', status: 'finished', class: { code: 'AMB' }, serviceProvider: { reference: `Organization?identifier=urn:none|${randomUUID()}` } },
          request: { method: 'POST', url: 'Encounter' },
        },
      ],
    });
    expect(res.status).toBe(400);
  });

  test('references to resources the transaction creates pass integrity; to missing ones fail', async () => {
    const res = await s.request('POST', '/fhir', {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        {
          resource: { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: `Patient/${randomUUID()}` } },
          request: { method: 'POST', url: 'Observation' },
        },
      ],
    });
    expect(res.status).toBe(400);
  });

  test('PATCH entries (JSON Patch as Binary) and conditional PUT entries', async () => {
    const p = (await s.request('POST', '/fhir/Patient', { resourceType: 'Patient', gender: 'female' })).body;
    const id = mrn();
    const patchDoc = Buffer.from(JSON.stringify([{ op: 'replace', path: '/gender', value: 'male' }])).toString('base64');
    const res = await s.request('POST', '/fhir', {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { resource: { resourceType: 'Binary', contentType: 'application/json-patch+json', data: patchDoc }, request: { method: 'PATCH', url: `Patient/${p.id}` } },
        { resource: { resourceType: 'Patient', identifier: [id] }, request: { method: 'PUT', url: `Patient?identifier=${id.system}|${id.value}` } },
      ],
    });
    expect(res.status).toBe(200);
    expect(res.body.entry[0].resource.gender).toBe('male');
    expect(res.body.entry[1].response.status).toBe('201 Created');
  });

  test('a Bundle that is neither batch nor transaction: 400', async () => {
    expect((await s.request('POST', '/fhir', { resourceType: 'Bundle', type: 'collection' })).status).toBe(400);
    expect((await s.request('POST', '/fhir', { resourceType: 'Patient' })).status).toBe(400);
  });
});

describe('batch', () => {
  test('runs entries independently and reports each outcome', async () => {
    const res = await s.request('POST', '/fhir', {
      resourceType: 'Bundle',
      type: 'batch',
      entry: [
        { resource: { resourceType: 'Patient' }, request: { method: 'POST', url: 'Patient' } },
        { request: { method: 'GET', url: `Patient/${randomUUID()}` } },
        { resource: { resourceType: 'Patient', gender: 42 }, request: { method: 'POST', url: 'Patient' } },
      ],
    });
    expect(res.status).toBe(200);
    expect(res.body.type).toBe('batch-response');
    expect(res.body.entry[0].response.status).toBe('201 Created');
    expect(res.body.entry[1].response.status).toBe('404');
    expect(res.body.entry[1].response.outcome.resourceType).toBe('OperationOutcome');
    expect(Number(res.body.entry[2].response.status)).toBeGreaterThanOrEqual(400);
  });
});
