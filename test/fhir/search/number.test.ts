/**
 * number, quantity and composite search:
 * https://hl7.org/fhir/R4/search.html#number — #quantity — #composite — and the prefixes of #prefix.
 * `rating` is the project's custom number parameter on PractitionerRole (fhir-profiles/).
 */
import { startServer, type TestServer } from '../../helpers/server';
import { create, matchIds, newTag, search, sorted } from './helpers';

let s: TestServer;
beforeAll(async () => {
  s = await startServer();
});
afterAll(async () => {
  await s.close();
});

const RATING = 'http://fhir.healthmed.com.br/StructureDefinition/rating';
const role = (rating: number) => ({ resourceType: 'PractitionerRole', active: true, extension: [{ url: RATING, valueDecimal: rating }] });

describe('number (custom parameter rating)', () => {
  test('every prefix', async () => {
    const t = newTag();
    const [r35, r40, r45, r50] = [await create(s, t, role(3.5)), await create(s, t, role(4)), await create(s, t, role(4.5)), await create(s, t, role(5))];
    const q = (v: string) => matchIds(s, `PractitionerRole?${t.q}&rating=${v}`);
    expect(await q('ge4')).toEqual(sorted([r40, r45, r50]));
    expect(await q('gt4')).toEqual(sorted([r45, r50]));
    expect(await q('le4')).toEqual(sorted([r35, r40]));
    expect(await q('lt4')).toEqual(sorted([r35]));
    expect(await q('sa4.5')).toEqual(sorted([r50]));
    expect(await q('eb4.5')).toEqual(sorted([r35, r40]));
    // "4" covers [3.5, 4.5), so 3.5 is "equal" to 4
    expect(await q('ne4')).toEqual(sorted([r45, r50]));
    expect(await q('ne4.0')).toEqual(sorted([r35, r45, r50]));
    expect(await q('ap4.6')).toEqual(sorted([r45, r50]));
    expect(await q('4.5')).toEqual(sorted([r45]));
    expect(await q('eq4.5,5')).toEqual(sorted([r45, r50]));
  });

  test('eq uses the implicit precision of the search value', async () => {
    const t = newTag();
    const a = await create(s, t, role(4.4));
    const b = await create(s, t, role(3.6));
    const c = await create(s, t, role(4.46));
    // "4" covers [3.5, 4.5); "4.4" covers [4.35, 4.45); "4.40" covers [4.395, 4.405)
    expect(await matchIds(s, `PractitionerRole?${t.q}&rating=4`)).toEqual(sorted([a, b, c]));
    expect(await matchIds(s, `PractitionerRole?${t.q}&rating=4.4`)).toEqual(sorted([a]));
    expect(await matchIds(s, `PractitionerRole?${t.q}&rating=4.40`)).toEqual(sorted([a]));
    expect(await matchIds(s, `PractitionerRole?${t.q}&rating=4.5`)).toEqual(sorted([c]));
  });

  test('a standard number parameter (RiskAssessment probability) and :missing', async () => {
    const t = newTag();
    const subject = await create(s, t, { resourceType: 'Patient' });
    const risk = (p?: number) => ({
      resourceType: 'RiskAssessment',
      status: 'final',
      subject: { reference: `Patient/${subject.id}` },
      ...(p === undefined ? {} : { prediction: [{ probabilityDecimal: p }] }),
    });
    const low = await create(s, t, risk(0.1));
    const high = await create(s, t, risk(0.8));
    const none = await create(s, t, risk());
    expect(await matchIds(s, `RiskAssessment?${t.q}&probability=gt0.5`)).toEqual(sorted([high]));
    expect(await matchIds(s, `RiskAssessment?${t.q}&probability=le0.5`)).toEqual(sorted([low]));
    expect(await matchIds(s, `RiskAssessment?${t.q}&probability:missing=true`)).toEqual(sorted([none]));
  });

  test('malformed numbers are a 400', async () => {
    for (const v of ['abc', 'ge', '4,5x', 'zz4']) {
      const res = await s.request('GET', `/fhir/PractitionerRole?rating=${v}`);
      expect([v, res.status, res.body.issue?.[0]?.code]).toEqual([v, 400, 'invalid']);
    }
  });
});

const UCUM = 'http://unitsofmeasure.org';
const vital = (code: string, value: number, unit = 'mm[Hg]') => ({
  resourceType: 'Observation',
  status: 'final',
  code: { coding: [{ system: 'http://loinc.org', code }] },
  valueQuantity: { value, unit, system: UCUM, code: unit },
});

describe('quantity', () => {
  test('number|system|code, number||code and a bare number with prefixes', async () => {
    const t = newTag();
    const a = await create(s, t, vital('8480-6', 120));
    const b = await create(s, t, vital('8480-6', 145));
    const kg = await create(s, t, vital('29463-7', 120, 'kg'));
    const q = (v: string) => matchIds(s, `Observation?${t.q}&value-quantity=${encodeURIComponent(v)}`);
    expect(await q(`gt130|${UCUM}|mm[Hg]`)).toEqual(sorted([b]));
    expect(await q('120||mm[Hg]')).toEqual(sorted([a]));
    expect(await q('120')).toEqual(sorted([a, kg]));
    expect(await q(`le120|${UCUM}|kg`)).toEqual(sorted([kg]));
    expect(await q(`120|http://other|mm[Hg]`)).toEqual([]);
  });
});

/** A blood pressure panel: systolic 130 and diastolic 85 as two components. */
const bloodPressure = {
  resourceType: 'Observation',
  status: 'final',
  code: { coding: [{ system: 'http://loinc.org', code: '85354-9' }] },
  component: [
    { code: { coding: [{ system: 'http://loinc.org', code: '8480-6' }] }, valueQuantity: { value: 130, system: UCUM, code: 'mm[Hg]' } },
    { code: { coding: [{ system: 'http://loinc.org', code: '8462-4' }] }, valueQuantity: { value: 85, system: UCUM, code: 'mm[Hg]' } },
  ],
};

describe('quantity (custom parameter price)', () => {
  test('a consultation price (Money in BRL) by prefix, with and without its currency, and as a sort key', async () => {
    const t = newTag();
    const PRICE = 'http://fhir.healthmed.com.br/StructureDefinition/consultation-price';
    const priced = (value: number) => ({ resourceType: 'PractitionerRole', active: true, extension: [{ url: PRICE, valueMoney: { value, currency: 'BRL' } }] });
    const cheap = await create(s, t, priced(150));
    const dear = await create(s, t, priced(300));
    const unpriced = await create(s, t, { resourceType: 'PractitionerRole', active: true });
    const q = (v: string) => matchIds(s, `PractitionerRole?${t.q}&price=${encodeURIComponent(v)}`);
    expect(await q('le200')).toEqual(sorted([cheap]));
    expect(await q('ge200|urn:iso:std:iso:4217|BRL')).toEqual(sorted([dear]));
    expect(await q('300||BRL')).toEqual(sorted([dear]));
    expect(await q('le1000|urn:iso:std:iso:4217|USD')).toEqual([]);
    expect(await matchIds(s, `PractitionerRole?${t.q}&price:missing=true`)).toEqual(sorted([unpriced]));
    const bySort = await search(s, `PractitionerRole?${t.q}&_sort=-price`);
    expect(bySort.entry.map((e: { resource: { id: string } }) => e.resource.id)).toEqual([dear.id, cheap.id, unpriced.id]);
  });
});

describe('composite', () => {
  test('code-value-quantity: both components on the same Observation', async () => {
    const t = newTag();
    const systolicHigh = await create(s, t, vital('8480-6', 150));
    await create(s, t, vital('8480-6', 110));
    await create(s, t, vital('8462-4', 150));
    const q = (v: string) => matchIds(s, `Observation?${t.q}&code-value-quantity=${encodeURIComponent(v)}`);
    expect(await q('http://loinc.org|8480-6$gt140')).toEqual(sorted([systolicHigh]));
    expect(await q('8480-6$gt140|http://unitsofmeasure.org|mm[Hg]')).toEqual(sorted([systolicHigh]));
    expect(await q('8480-6$lt100')).toEqual([]);
    const bad = await s.request('GET', `/fhir/Observation?code-value-quantity=8480-6`);
    expect(bad.status).toBe(400);
  });

  test('component-code-value-quantity over Observation.component', async () => {
    const t = newTag();
    const bp = await create(s, t, bloodPressure);
    const q = (v: string) => matchIds(s, `Observation?${t.q}&component-code-value-quantity=${encodeURIComponent(v)}`);
    expect(await q('http://loinc.org|8480-6$ge130')).toEqual(sorted([bp]));
    expect(await q('http://loinc.org|8480-6$gt200')).toEqual([]);
    // per element: the diastolic component is 85, the systolic 130; neither component has 8462-4 at 130
    expect(await q('http://loinc.org|8462-4$ge130')).toEqual([]);
    expect(await q('http://loinc.org|8462-4$85')).toEqual(sorted([bp]));
    expect(await q('8462-4$lt90,8480-6$gt200')).toEqual(sorted([bp]));
    expect(await q('8480-6$lt90')).toEqual([]);
  });

  test('combo-code-value-quantity: the Observation itself or one of its components', async () => {
    const t = newTag();
    const bp = await create(s, t, bloodPressure);
    const systolic = await create(s, t, vital('8480-6', 150));
    const q = (v: string) => matchIds(s, `Observation?${t.q}&combo-code-value-quantity=${encodeURIComponent(v)}`);
    expect(await q('8480-6$ge130')).toEqual(sorted([bp, systolic]));
    expect(await q('8480-6$85')).toEqual([]);
    expect(await q('85354-9$130')).toEqual([]);
  });

  test('code-value-concept and the same composite across an update', async () => {
    const t = newTag();
    const finding = (value: string) => ({
      resourceType: 'Observation',
      status: 'final',
      code: { coding: [{ system: 'http://loinc.org', code: '883-9' }] },
      valueCodeableConcept: { coding: [{ system: 'http://snomed.info/sct', code: value }] },
    });
    const a = await create(s, t, finding('278149003'));
    const q = (v: string) => matchIds(s, `Observation?${t.q}&code-value-concept=${encodeURIComponent(v)}`);
    expect(await q('http://loinc.org|883-9$http://snomed.info/sct|278149003')).toEqual(sorted([a]));
    const updated = await s.request('PUT', `/fhir/Observation/${a.id}`, { ...finding('278152006'), id: a.id, meta: { tag: [t.tag] } });
    expect(updated.status).toBe(200);
    expect(await q('883-9$278149003')).toEqual([]);
    expect(await q('883-9$278152006')).toEqual(sorted([a]));
  });
});
