/**
 * REST interactions over HTTP: https://hl7.org/fhir/R4/http.html
 * read, vread, create, update, patch, delete, conditional create/update/delete, If-Match, Prefer, _summary.
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

const CPF_SYSTEM = 'http://rnds.saude.gov.br/fhir/r4/NamingSystem/cpf';

/** A unique token per test, so tests never see each other's data. */
const tag = () => ({ system: 'urn:test', code: randomUUID() });

function patient(extra: Record<string, unknown> = {}) {
  return { resourceType: 'Patient', name: [{ family: 'Souza', given: ['Ana'] }], gender: 'female', ...extra };
}

async function createPatient(extra: Record<string, unknown> = {}) {
  const res = await s.request('POST', '/fhir/Patient', patient(extra));
  expect(res.status).toBe(201);
  return res.body;
}

describe('create', () => {
  test('assigns an id and version, answers Location, ETag and Last-Modified', async () => {
    const res = await s.request('POST', '/fhir/Patient', patient({ id: 'client-chosen' }));
    expect(res.status).toBe(201);
    expect(res.body.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.body.id).not.toBe('client-chosen');
    expect(res.body.meta.versionId).toBe('1');
    expect(res.headers.get('location')).toBe(`${s.fhirBase}/Patient/${res.body.id}/_history/1`);
    expect(res.headers.get('etag')).toBe('W/"1"');
    expect(new Date(res.headers.get('last-modified')!).getTime()).toBeGreaterThan(0);
    expect(res.headers.get('content-type')).toContain('application/fhir+json');
  });

  test('Prefer: return=minimal answers no body, return=OperationOutcome an outcome', async () => {
    const minimal = await s.request('POST', '/fhir/Patient', patient(), { prefer: 'return=minimal' });
    expect(minimal.status).toBe(201);
    expect(minimal.text).toBe('');
    expect(minimal.headers.get('location')).toContain('/fhir/Patient/');
    const oo = await s.request('POST', '/fhir/Patient', patient(), { prefer: 'return=OperationOutcome' });
    expect(oo.status).toBe(201);
    expect(oo.body.resourceType).toBe('OperationOutcome');
  });

  test('accepts application/json as well as application/fhir+json', async () => {
    const res = await s.request('POST', '/fhir/Patient', patient(), { 'content-type': 'application/json' });
    expect(res.status).toBe(201);
  });

  test('every R4 resource type can be stored', async () => {
    for (const resource of [
      { resourceType: 'Basic', code: { text: 'x' } },
      { resourceType: 'VisionPrescription', status: 'active', created: '2020-01-01', patient: { display: 'x' }, dateWritten: '2020-01-01', prescriber: { display: 'y' }, lensSpecification: [{ product: { text: 'lens' }, eye: 'left' }] },
      { resourceType: 'TestScript', url: 'http://x', name: 'T', status: 'draft' },
    ]) {
      const res = await s.request('POST', `/fhir/${resource.resourceType}`, resource);
      expect([resource.resourceType, res.status]).toEqual([resource.resourceType, 201]);
    }
  });
});

describe('bad input is a 4xx OperationOutcome and stores nothing', () => {
  test('malformed JSON: 400', async () => {
    const res = await s.request('POST', '/fhir/Patient', '{"resourceType": "Patient",');
    expect(res.status).toBe(400);
    expect(res.body.resourceType).toBe('OperationOutcome');
  });

  test('resourceType differs from the URL: 400', async () => {
    const res = await s.request('POST', '/fhir/Patient', { resourceType: 'Observation', status: 'final', code: { text: 'x' } });
    expect(res.status).toBe(400);
    expect(res.body.issue[0].code).toBe('invalid');
  });

  test('unknown resource type: 404', async () => {
    const res = await s.request('POST', '/fhir/Spaceship', { resourceType: 'Spaceship' });
    expect(res.status).toBe(404);
    expect(res.body.resourceType).toBe('OperationOutcome');
  });

  test('id in body differs from the URL: 400', async () => {
    const p = await createPatient();
    const res = await s.request('PUT', `/fhir/Patient/${p.id}`, { ...p, id: 'other' });
    expect(res.status).toBe(400);
  });

  test('XML body: 415; XML only accepted: 406', async () => {
    const xml = await s.request('POST', '/fhir/Patient', '<Patient xmlns="http://hl7.org/fhir"/>', { 'content-type': 'application/fhir+xml' });
    expect(xml.status).toBe(415);
    expect(xml.body.resourceType).toBe('OperationOutcome');
    const accept = await s.request('GET', '/fhir/metadata', undefined, { accept: 'application/fhir+xml' });
    expect(accept.status).toBe(406);
    const format = await s.request('GET', '/fhir/metadata?_format=xml');
    expect(format.status).toBe(406);
  });

  test('a body over MAX_JSON_MB: 413', async () => {
    const small = await startServer({ MAX_JSON_MB: '0.01' });
    try {
      const res = await small.request('POST', '/fhir/Patient', patient({ name: [{ text: 'x'.repeat(20_000) }] }));
      expect(res.status).toBe(413);
      expect(res.body.resourceType).toBe('OperationOutcome');
    } finally {
      await small.close();
    }
  });

  test('structurally invalid resource: 4xx with the element named', async () => {
    const res = await s.request('POST', '/fhir/Patient', patient({ gender: 42 }));
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect(JSON.stringify(res.body.issue)).toContain('gender');
  });

  test('an invalid CPF or CRM is refused on every write, with or without a profile', async () => {
    const cpf = await s.request('POST', '/fhir/Patient', patient({ identifier: [{ system: CPF_SYSTEM, value: '12345678900' }] }));
    expect([400, 422]).toContain(cpf.status);
    const good = await s.request('POST', '/fhir/Patient', patient({ identifier: [{ system: CPF_SYSTEM, value: '52998224725' }] }));
    expect(good.status).toBe(201);
    const crm = await s.request('POST', '/fhir/Practitioner', {
      resourceType: 'Practitioner',
      identifier: [{ system: 'http://fhir.healthmed.com.br/sid/crm', value: 'XX-123' }],
    });
    expect([400, 422]).toContain(crm.status);
  });

  test('unknown route and unsupported method are OperationOutcomes', async () => {
    const res = await s.request('GET', '/nowhere');
    expect(res.status).toBe(404);
    expect(res.body.resourceType).toBe('OperationOutcome');
    const m = await s.request('DELETE', '/fhir/metadata');
    expect(m.status).toBe(405);
  });
});

describe('read and vread', () => {
  test('read answers the resource with version headers; unknown id: 404', async () => {
    const p = await createPatient();
    const res = await s.request('GET', `/fhir/Patient/${p.id}`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual(p);
    expect(res.headers.get('etag')).toBe('W/"1"');
    const missing = await s.request('GET', `/fhir/Patient/${randomUUID()}`);
    expect(missing.status).toBe(404);
    expect(missing.body.issue[0].code).toBe('not-found');
  });

  test('vread answers each version; If-None-Match answers 304', async () => {
    const p = await createPatient();
    await s.request('PUT', `/fhir/Patient/${p.id}`, { ...p, gender: 'other' });
    const v1 = await s.request('GET', `/fhir/Patient/${p.id}/_history/1`);
    const v2 = await s.request('GET', `/fhir/Patient/${p.id}/_history/2`);
    expect(v1.body.gender).toBe('female');
    expect(v2.body.gender).toBe('other');
    expect((await s.request('GET', `/fhir/Patient/${p.id}/_history/3`)).status).toBe(404);
    const notModified = await s.request('GET', `/fhir/Patient/${p.id}`, undefined, { 'if-none-match': 'W/"2"' });
    expect(notModified.status).toBe(304);
  });

  test('_summary and _elements subset the resource and tag it SUBSETTED', async () => {
    const p = await createPatient({ text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">Ana</div>' }, maritalStatus: { text: 'S' } });
    const elements = await s.request('GET', `/fhir/Patient/${p.id}?_elements=gender`);
    expect(Object.keys(elements.body).sort()).toEqual(['gender', 'id', 'meta', 'resourceType']);
    expect(elements.body.meta.tag[0].code).toBe('SUBSETTED');
    const summary = await s.request('GET', `/fhir/Patient/${p.id}?_summary=true`);
    expect(summary.body.name).toBeDefined();
    expect(summary.body.maritalStatus).toBeUndefined();
    expect(summary.body.text).toBeUndefined();
    const data = await s.request('GET', `/fhir/Patient/${p.id}?_summary=data`);
    expect(data.body.text).toBeUndefined();
    expect(data.body.maritalStatus).toBeDefined();
  });

  test('_pretty indents the JSON', async () => {
    const p = await createPatient();
    const res = await s.request('GET', `/fhir/Patient/${p.id}?_pretty=true`);
    expect(res.text).toContain('\n  "resourceType"');
  });
});

describe('update', () => {
  test('creates a new version; create-on-update with a client id answers 201', async () => {
    const p = await createPatient();
    const res = await s.request('PUT', `/fhir/Patient/${p.id}`, { ...p, gender: 'male' });
    expect(res.status).toBe(200);
    expect(res.body.meta.versionId).toBe('2');
    expect(res.headers.get('etag')).toBe('W/"2"');
    const id = `client-${randomUUID()}`;
    const created = await s.request('PUT', `/fhir/Patient/${id}`, patient({ id }));
    expect(created.status).toBe(201);
    expect(created.headers.get('location')).toBe(`${s.fhirBase}/Patient/${id}/_history/1`);
  });

  test('If-Match with a stale version: 412; the current version: 200', async () => {
    const p = await createPatient();
    await s.request('PUT', `/fhir/Patient/${p.id}`, { ...p, gender: 'male' });
    const stale = await s.request('PUT', `/fhir/Patient/${p.id}`, p, { 'if-match': 'W/"1"' });
    expect(stale.status).toBe(412);
    expect(stale.body.resourceType).toBe('OperationOutcome');
    const fresh = await s.request('PUT', `/fhir/Patient/${p.id}`, p, { 'if-match': 'W/"2"' });
    expect(fresh.status).toBe(200);
  });

  test('concurrent updates with the same If-Match: exactly one wins', async () => {
    const p = await createPatient();
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        s.request('PUT', `/fhir/Patient/${p.id}`, { ...p, name: [{ family: `F${i}` }] }, { 'if-match': 'W/"1"' }),
      ),
    );
    const statuses = results.map((r) => r.status).sort();
    expect(statuses.filter((x) => x === 200)).toHaveLength(1);
    expect(statuses.filter((x) => x === 412)).toHaveLength(7);
    const current = await s.request('GET', `/fhir/Patient/${p.id}`);
    expect(current.body.meta.versionId).toBe('2');
  });

  test('a PUT without an id in the body: 400', async () => {
    const p = await createPatient();
    const { id: _id, ...rest } = p;
    expect((await s.request('PUT', `/fhir/Patient/${p.id}`, rest)).status).toBe(400);
  });
});

describe('delete', () => {
  test('keeps a tombstone: read answers 410, history keeps every version', async () => {
    const p = await createPatient();
    const del = await s.request('DELETE', `/fhir/Patient/${p.id}`);
    expect(del.status).toBe(200);
    const gone = await s.request('GET', `/fhir/Patient/${p.id}`);
    expect(gone.status).toBe(410);
    expect(gone.body.issue[0].code).toBe('deleted');
    expect(gone.headers.get('etag')).toBe('W/"2"');
    const v1 = await s.request('GET', `/fhir/Patient/${p.id}/_history/1`);
    expect(v1.status).toBe(200);
    const hist = await s.request('GET', `/fhir/Patient/${p.id}/_history`);
    expect(hist.body.entry.map((e: { request: { method: string } }) => e.request.method)).toEqual(['DELETE', 'POST']);
    // re-creating by PUT after a delete continues the version sequence
    const again = await s.request('PUT', `/fhir/Patient/${p.id}`, p);
    expect(again.status).toBe(201);
    expect(again.body.meta.versionId).toBe('3');
  });

  test('deleting an unknown resource: 404', async () => {
    expect((await s.request('DELETE', `/fhir/Patient/${randomUUID()}`)).status).toBe(404);
  });
});

describe('conditional interactions', () => {
  test('conditional create: no match creates, one match answers 200 with it, two matches 412', async () => {
    const t = tag();
    const criteria = `_tag=${t.system}|${t.code}`;
    const first = await s.request('POST', '/fhir/Patient', patient({ meta: { tag: [t] } }), { 'if-none-exist': criteria });
    expect(first.status).toBe(201);
    const second = await s.request('POST', '/fhir/Patient', patient({ meta: { tag: [t] } }), { 'if-none-exist': criteria });
    expect(second.status).toBe(200);
    expect(second.body.id).toBe(first.body.id);
    await s.request('POST', '/fhir/Patient', patient({ meta: { tag: [t] } }));
    const third = await s.request('POST', '/fhir/Patient', patient({ meta: { tag: [t] } }), { 'if-none-exist': criteria });
    expect(third.status).toBe(412);
  });

  test('concurrent conditional creates with the same criteria create one resource', async () => {
    const value = randomUUID();
    const body = patient({ identifier: [{ system: 'urn:test:mrn', value }] });
    const results = await Promise.all(
      Array.from({ length: 6 }, () => s.request('POST', '/fhir/Patient', body, { 'if-none-exist': `identifier=urn:test:mrn|${value}` })),
    );
    expect(results.filter((r) => r.status === 201)).toHaveLength(1);
    expect(new Set(results.map((r) => r.body.id)).size).toBe(1);
    const search = await s.request('GET', `/fhir/Patient?identifier=urn:test:mrn|${value}`);
    expect(search.body.entry).toHaveLength(1);
  });

  test('conditional update: creates, then updates the match; several matches 412', async () => {
    const value = randomUUID();
    const url = `/fhir/Patient?identifier=urn:test:mrn|${value}`;
    const body = patient({ identifier: [{ system: 'urn:test:mrn', value }] });
    const created = await s.request('PUT', url, body);
    expect(created.status).toBe(201);
    const updated = await s.request('PUT', url, { ...body, gender: 'male' });
    expect(updated.status).toBe(200);
    expect(updated.body.id).toBe(created.body.id);
    expect(updated.body.meta.versionId).toBe('2');
    await s.request('POST', '/fhir/Patient', body);
    expect((await s.request('PUT', url, body)).status).toBe(412);
  });

  test('conditional delete: deletes the one match; several matches 412', async () => {
    const value = randomUUID();
    const body = patient({ identifier: [{ system: 'urn:test:mrn', value }] });
    const p = (await s.request('POST', '/fhir/Patient', body)).body;
    const del = await s.request('DELETE', `/fhir/Patient?identifier=urn:test:mrn|${value}`);
    expect(del.status).toBe(200);
    expect((await s.request('GET', `/fhir/Patient/${p.id}`)).status).toBe(410);
    await s.request('POST', '/fhir/Patient', body);
    await s.request('POST', '/fhir/Patient', body);
    expect((await s.request('DELETE', `/fhir/Patient?identifier=urn:test:mrn|${value}`)).status).toBe(412);
  });

  test('search by _id and token answers a searchset', async () => {
    const p = await createPatient({ identifier: [{ system: 'urn:test:mrn', value: randomUUID() }] });
    const byId = await s.request('GET', `/fhir/Patient?_id=${p.id}`);
    expect(byId.body.type).toBe('searchset');
    expect(byId.body.entry[0].fullUrl).toBe(`${s.fhirBase}/Patient/${p.id}`);
    expect(byId.body.entry[0].search.mode).toBe('match');
    const byToken = await s.request('GET', `/fhir/Patient?identifier=${p.identifier[0].value}`);
    expect(byToken.body.entry.map((e: { resource: { id: string } }) => e.resource.id)).toEqual([p.id]);
    expect((await s.request('GET', '/fhir/Patient?nonsense=1')).status).toBe(400);
  });
});

describe('patch', () => {
  test('JSON Patch creates a new version', async () => {
    const p = await createPatient();
    const res = await s.request('PATCH', `/fhir/Patient/${p.id}`, [{ op: 'replace', path: '/gender', value: 'male' }], {
      'content-type': 'application/json-patch+json',
    });
    expect(res.status).toBe(200);
    expect(res.body.gender).toBe('male');
    expect(res.body.meta.versionId).toBe('2');
  });

  test('FHIRPath Patch (Parameters) applies', async () => {
    const p = await createPatient();
    const res = await s.request('PATCH', `/fhir/Patient/${p.id}`, {
      resourceType: 'Parameters',
      parameter: [
        {
          name: 'operation',
          part: [
            { name: 'type', valueCode: 'replace' },
            { name: 'path', valueString: 'Patient.gender' },
            { name: 'value', valueCode: 'other' },
          ],
        },
      ],
    });
    expect(res.status).toBe(200);
    expect(res.body.gender).toBe('other');
  });

  test('a patch producing an invalid resource is refused; If-Match mismatch 412', async () => {
    const p = await createPatient();
    const invalid = await s.request('PATCH', `/fhir/Patient/${p.id}`, [{ op: 'replace', path: '/gender', value: 42 }], {
      'content-type': 'application/json-patch+json',
    });
    expect(invalid.status).toBeGreaterThanOrEqual(400);
    expect(invalid.status).toBeLessThan(500);
    const stale = await s.request('PATCH', `/fhir/Patient/${p.id}`, [{ op: 'replace', path: '/gender', value: 'male' }], {
      'content-type': 'application/json-patch+json',
      'if-match': 'W/"9"',
    });
    expect(stale.status).toBe(412);
    expect((await s.request('GET', `/fhir/Patient/${p.id}`)).body.meta.versionId).toBe('1');
  });
});

describe('referential integrity', () => {
  test('a reference to a local resource that does not exist is refused, naming it', async () => {
    const missing = randomUUID();
    const res = await s.request('POST', '/fhir/Observation', {
      resourceType: 'Observation',
      status: 'final',
      code: { text: 'x' },
      subject: { reference: `Patient/${missing}` },
    });
    expect(res.status).toBe(400);
    expect(res.body.issue[0].diagnostics).toContain(`Patient/${missing}`);
  });

  test('deleting a resource that others reference: 409; once they are gone it works', async () => {
    const p = await createPatient();
    const obs = await s.request('POST', '/fhir/Observation', {
      resourceType: 'Observation',
      status: 'final',
      code: { text: 'x' },
      subject: { reference: `Patient/${p.id}` },
    });
    expect(obs.status).toBe(201);
    const refused = await s.request('DELETE', `/fhir/Patient/${p.id}`);
    expect(refused.status).toBe(409);
    expect(refused.body.issue[0].diagnostics).toContain(`Observation/${obs.body.id}`);
    expect((await s.request('DELETE', `/fhir/Observation/${obs.body.id}`)).status).toBe(200);
    expect((await s.request('DELETE', `/fhir/Patient/${p.id}`)).status).toBe(200);
  });
});

describe('history', () => {
  test('type and system history with _since, _count and next links', async () => {
    const since = new Date().toISOString();
    const t = tag();
    for (let i = 0; i < 5; i++) await createPatient({ meta: { tag: [t] } });
    const page1 = await s.request('GET', `/fhir/Patient/_history?_since=${encodeURIComponent(since)}&_count=2`);
    expect(page1.body.type).toBe('history');
    expect(page1.body.entry).toHaveLength(2);
    const next = page1.body.link.find((l: { relation: string }) => l.relation === 'next');
    expect(next.url.startsWith(s.fhirBase)).toBe(true);
    const seen = [...page1.body.entry];
    let url: string | undefined = next.url;
    while (url) {
      const page = await s.request('GET', url);
      seen.push(...page.body.entry);
      url = page.body.link.find((l: { relation: string }) => l.relation === 'next')?.url;
    }
    expect(seen.length).toBeGreaterThanOrEqual(5);
    const system = await s.request('GET', `/fhir/_history?_since=${encodeURIComponent(since)}&_count=100`);
    expect(system.body.entry.length).toBeGreaterThanOrEqual(5);
    expect((await s.request('GET', '/fhir/Patient/_history?_since=yesterday')).status).toBe(400);
  });

  test('_at answers the versions current at an instant', async () => {
    const p = await createPatient();
    await new Promise((r) => setTimeout(r, 20));
    const at = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 20));
    await s.request('PUT', `/fhir/Patient/${p.id}`, { ...p, gender: 'male' });
    const res = await s.request('GET', `/fhir/Patient/${p.id}/_history?_at=${encodeURIComponent(at)}`);
    expect(res.body.entry).toHaveLength(1);
    expect(res.body.entry[0].resource.meta.versionId).toBe('1');
  });
});

describe('metadata and probes', () => {
  test('CapabilityStatement lists every type with its interactions and the project profiles', async () => {
    const res = await s.request('GET', '/fhir/metadata');
    expect(res.status).toBe(200);
    expect(res.body.resourceType).toBe('CapabilityStatement');
    expect(res.body.fhirVersion).toBe('4.0.1');
    const types = res.body.rest[0].resource.map((r: { type: string }) => r.type);
    expect(types.length).toBeGreaterThanOrEqual(145);
    const pat = res.body.rest[0].resource.find((r: { type: string }) => r.type === 'Patient');
    expect(pat.interaction.map((i: { code: string }) => i.code)).toEqual(expect.arrayContaining(['read', 'vread', 'create', 'update', 'patch', 'delete', 'history-instance', 'search-type']));
    expect(pat.supportedProfile).toContain('http://fhir.healthmed.com.br/StructureDefinition/healthmed-patient');
    expect(res.body.rest[0].interaction.map((i: { code: string }) => i.code)).toEqual(['transaction', 'batch', 'history-system', 'search-system']);
  });

  test('healthz, readyz and metrics', async () => {
    expect((await s.request('GET', '/healthz')).status).toBe(200);
    expect((await s.request('GET', '/readyz')).status).toBe(200);
    const metrics = await s.request('GET', '/metrics');
    expect(metrics.text).toContain('http_request_duration_seconds');
  });
});

describe('routing', () => {
  test('an unknown operation: 404; HEAD answers headers without a body', async () => {
    const op = await s.request('POST', '/fhir/Patient/$nonsense', { resourceType: 'Parameters' });
    expect(op.status).toBe(404);
    expect(op.body.issue[0].diagnostics).toContain('$nonsense');
    const p = await createPatient();
    const head = await s.request('HEAD', `/fhir/Patient/${p.id}`);
    expect(head.status).toBe(200);
    expect(head.headers.get('etag')).toBe('W/"1"');
    expect(head.text).toBe('');
  });
});
