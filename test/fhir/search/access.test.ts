/**
 * Search under a patient's token (CONTRACT section 4): matches, includes, chains, _has and system search
 * see only what the caller may read; counts and paging agree with what is returned.
 */
import { startServer, type TestServer } from '../../helpers/server';
import { signUp, tokensFor } from '../../auth/helpers';
import { create, newTag, ref, refs, type Tagged } from './helpers';

let s: TestServer;
beforeAll(async () => {
  s = await startServer();
});
afterAll(async () => {
  await s.close();
});

async function patientWithToken() {
  const person = await signUp(s);
  const { access_token } = await tokensFor(s, person.email);
  return { patient: person.patient, auth: { authorization: `Bearer ${access_token}` } };
}

const observation = (t: Tagged, subject: string, code = 'x') =>
  create(s, t, { resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'urn:c', code }] }, subject: { reference: subject } });

test('a patient finds their own Observations only, with totals that agree', async () => {
  const t = newTag();
  const me = await patientWithToken();
  const other = await signUp(s);
  const mine = await observation(t, me.patient);
  await observation(t, other.patient);
  const res = await s.request('GET', `/fhir/Observation?${t.q}&_total=accurate`, undefined, me.auth);
  expect(res.status).toBe(200);
  expect(refs(res.body)).toEqual([ref(mine)]);
  expect(res.body.total).toBe(1);
});

test('includes, chains and _has never reach other patients', async () => {
  const t = newTag();
  const me = await patientWithToken();
  const other = await signUp(s);
  await observation(t, me.patient, 'mine');
  const theirs = await observation(t, other.patient, 'theirs');
  // _include of the subject: only my own Patient comes along
  const inc = await s.request('GET', `/fhir/Observation?${t.q}&_include=Observation:subject`, undefined, me.auth);
  expect(refs(inc.body, 'include')).toEqual([me.patient]);
  // a chain on the other patient's name cannot reveal their Observation
  const chained = await s.request('GET', `/fhir/Observation?${t.q}&subject:Patient._id=${other.patient.split('/')[1]}`, undefined, me.auth);
  expect(refs(chained.body)).toEqual([]);
  // _has: the other patient's Observation does not make their Patient visible
  const has = await s.request('GET', `/fhir/Patient?_has:Observation:patient:code=urn:c|theirs`, undefined, me.auth);
  expect(refs(has.body)).toEqual([]);
  // _revinclude from my Patient brings my Observation, not theirs
  const rev = await s.request('GET', `/fhir/Patient?_id=${me.patient.split('/')[1]}&_revinclude=Observation:subject`, undefined, me.auth);
  expect(refs(rev.body, 'include')).not.toContain(ref(theirs));
  expect(refs(rev.body, 'include')).toHaveLength(1);
});

test('without a token, search is a 401', async () => {
  const res = await s.request('GET', '/fhir/Observation', undefined, { authorization: '' });
  expect(res.status).toBe(401);
});
