/**
 * `near` on Location (https://hl7.org/fhir/R4/location.html#positional): `lat|long|distance|units`, checked
 * against the haversine great-circle distance; and the doctor search of CONTRACT section 5 that chains it.
 */
import { randomUUID } from 'node:crypto';
import { startServer, type TestServer } from '../../helpers/server';
import { create, matchIds, newTag, ref, refs, search, sorted, type Json } from './helpers';

let s: TestServer;
beforeAll(async () => {
  s = await startServer();
});
afterAll(async () => {
  await s.close();
});

/** Great-circle distance in km on a sphere of radius 6371 km. */
function haversineKm(lat1: number, lon1: number, lat2: number, lon2: number): number {
  const rad = (d: number) => (d * Math.PI) / 180;
  const a = Math.sin(rad(lat2 - lat1) / 2) ** 2 + Math.cos(rad(lat1)) * Math.cos(rad(lat2)) * Math.sin(rad(lon2 - lon1) / 2) ** 2;
  return 2 * 6371 * Math.asin(Math.sqrt(a));
}

const PAULISTA = { latitude: -23.5614, longitude: -46.6559 };
const location = (name: string, latitude: number, longitude: number) => ({ resourceType: 'Location', name, position: { latitude, longitude } });

test('locations within the distance, and only those, as the haversine formula says', async () => {
  const t = newTag();
  const points: [string, number, number][] = [
    ['Sé', -23.5503, -46.6339],
    ['Pinheiros', -23.5674, -46.7019],
    ['Santo André', -23.6639, -46.5383],
    ['Campinas', -22.9056, -47.0608],
    ['Rio', -22.9068, -43.1729],
  ];
  const created = [];
  for (const [name, lat, long] of points) created.push({ r: await create(s, t, location(name, lat, long)), km: haversineKm(PAULISTA.latitude, PAULISTA.longitude, lat, long) });
  for (const radius of [1, 3, 10, 20, 100, 400]) {
    const expected = created.filter((c) => c.km <= radius).map((c) => c.r);
    const got = await matchIds(s, `Location?${t.q}&near=${PAULISTA.latitude}|${PAULISTA.longitude}|${radius}|km`);
    expect([radius, got]).toEqual([radius, sorted(expected)]);
  }
  // just inside and just outside a location's exact distance
  const pinheiros = created[1];
  const inside = await matchIds(s, `Location?${t.q}&near=${PAULISTA.latitude}|${PAULISTA.longitude}|${pinheiros.km + 0.01}|km`);
  const outside = await matchIds(s, `Location?${t.q}&near=${PAULISTA.latitude}|${PAULISTA.longitude}|${pinheiros.km - 0.01}|km`);
  expect(inside).toContain(ref(pinheiros.r));
  expect(outside).not.toContain(ref(pinheiros.r));
});

test('units m and miles, default km, and a default distance', async () => {
  const t = newTag();
  const se = await create(s, t, location('Sé', -23.5503, -46.6339));
  const km = haversineKm(PAULISTA.latitude, PAULISTA.longitude, -23.5503, -46.6339);
  const q = (v: string) => matchIds(s, `Location?${t.q}&near=${v}`);
  expect(await q(`${PAULISTA.latitude}|${PAULISTA.longitude}|${Math.ceil(km * 1000)}|m`)).toEqual(sorted([se]));
  expect(await q(`${PAULISTA.latitude}|${PAULISTA.longitude}|${Math.floor(km * 1000) - 10}|m`)).toEqual([]);
  expect(await q(`${PAULISTA.latitude}|${PAULISTA.longitude}|${(km / 1.609344 + 0.01).toFixed(3)}|[mi_i]`)).toEqual(sorted([se]));
  expect(await q(`${PAULISTA.latitude}|${PAULISTA.longitude}|${(km + 0.01).toFixed(3)}`)).toEqual(sorted([se]));
  expect(await q(`${PAULISTA.latitude}|${PAULISTA.longitude}`)).toEqual(sorted([se]));
});

test('invalid near values are a 400', async () => {
  for (const v of ['abc', '91|0|1|km', '0|0|1|parsecs', '0|0|-1|km']) {
    const res = await s.request('GET', `/fhir/Location?near=${encodeURIComponent(v)}`);
    expect([v, res.status]).toEqual([v, 400]);
  }
});

test('the doctor search: specialty, location.near, rating and _include of the practitioner', async () => {
  const t = newTag();
  const specialty = randomUUID();
  const RATING = 'http://fhir.healthmed.com.br/StructureDefinition/rating';
  const near = await create(s, t, location('Perto', -23.5503, -46.6339));
  const far = await create(s, t, location('Longe', -22.9068, -43.1729));
  const doctor = async (loc: Json, rating: number, code: string = specialty) => {
    const practitioner = await create(s, t, { resourceType: 'Practitioner', name: [{ family: `Dr ${rating}` }] });
    const role = await create(s, t, {
      resourceType: 'PractitionerRole',
      practitioner: { reference: ref(practitioner) },
      location: [{ reference: `Location/${loc.id}` }],
      specialty: [{ coding: [{ system: 'urn:specialty', code }] }],
      extension: [{ url: RATING, valueDecimal: rating }],
    });
    return { practitioner, role };
  };
  const good = await doctor(near, 4.7);
  await doctor(near, 3.2);
  await doctor(far, 4.9);
  await doctor(near, 4.8, 'other');
  const bundle = await search(
    s,
    `PractitionerRole?${t.q}&specialty=urn:specialty|${specialty}&location.near=${PAULISTA.latitude}|${PAULISTA.longitude}|20|km&rating=ge4&_include=PractitionerRole:practitioner`,
  );
  expect(refs(bundle)).toEqual([ref(good.role)]);
  expect(refs(bundle, 'include')).toEqual([ref(good.practitioner)]);
});
