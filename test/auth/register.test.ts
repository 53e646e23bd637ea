/**
 * Accounts (CONTRACT section 4): patient self sign-up creates the Patient with its CPF identifier;
 * practitioners are created with an admin token and get a Practitioner with its CRM identifier.
 */
import { startServer, type TestServer } from '../helpers/server';
import { ADMIN_ENV, PASSWORD, adminToken, json, punctuatedCpf, randomCpf, randomCrm, randomEmail, signUp, tokensFor } from './helpers';

const CPF_SYSTEM = 'http://rnds.saude.gov.br/fhir/r4/NamingSystem/cpf';
const CRM_SYSTEM = 'http://fhir.healthmed.com.br/sid/crm';

let server: TestServer;
beforeAll(async () => {
  server = await startServer(ADMIN_ENV);
});
afterAll(() => server.close());

const patientBody = (over: Record<string, unknown> = {}) => ({
  role: 'patient',
  email: randomEmail(),
  cpf: randomCpf(),
  password: PASSWORD,
  name: { given: ['Ana'], family: 'Souza' },
  birthDate: '1990-04-12',
  ...over,
});

describe('POST /auth/register (patient)', () => {
  it('creates the account and a valid Patient with CPF, name, birthDate and e-mail', async () => {
    const body = patientBody({ cpf: punctuatedCpf(randomCpf()) });
    const res = await json(server, '/auth/register', body);
    expect(res.status).toBe(201);
    expect(res.body.patient).toMatch(/^Patient\/[A-Za-z0-9\-.]+$/);
    const read = await server.request('GET', `/fhir/${res.body.patient}`);
    expect(read.status).toBe(200);
    expect(read.body.identifier).toEqual([{ use: 'official', system: CPF_SYSTEM, value: (body.cpf as string).replace(/\D/g, '') }]);
    expect(read.body.name).toEqual([{ use: 'official', given: ['Ana'], family: 'Souza' }]);
    expect(read.body.birthDate).toBe('1990-04-12');
    expect(read.body.telecom).toEqual([{ system: 'email', value: body.email, use: 'home' }]);
  });

  it('answers 409 when the e-mail or the CPF is taken, and creates no Patient', async () => {
    const first = await signUp(server);
    const byEmail = await json(server, '/auth/register', patientBody({ email: first.email.toUpperCase() }));
    expect(byEmail.status).toBe(409);
    expect(byEmail.body.resourceType).toBe('OperationOutcome');
    const byCpf = await json(server, '/auth/register', patientBody({ cpf: punctuatedCpf(first.cpf) }));
    expect(byCpf.status).toBe(409);
    const search = await server.request('GET', `/fhir/Patient?identifier=${CPF_SYSTEM}|${first.cpf}`);
    expect(search.body.total ?? search.body.entry?.length).toBe(1);
  });

  it.each([
    ['an invalid CPF', { cpf: '123.456.789-00' }, 'cpf'],
    ['a CPF of one repeated digit', { cpf: '11111111111' }, 'cpf'],
    ['an invalid e-mail', { email: 'not-an-email' }, 'email'],
    ['a weak password', { password: 'short1234' }, 'password'],
    ['no name', { name: undefined }, 'name'],
    ['a future birthDate', { birthDate: '2999-01-01' }, 'birthDate'],
  ])('answers 400 with an OperationOutcome for %s', async (_label, over, field) => {
    const res = await json(server, '/auth/register', patientBody(over));
    expect(res.status).toBe(400);
    expect(res.body.resourceType).toBe('OperationOutcome');
    expect(res.body.issue[0].code).toBe('invalid');
    expect(res.body.issue[0].expression).toEqual([field]);
  });

  it('answers 400 for an unknown role and 415 for a non-JSON body', async () => {
    expect((await json(server, '/auth/register', patientBody({ role: 'admin' }))).status).toBe(400);
    const xml = await server.request('POST', '/auth/register', '<x/>', { 'content-type': 'application/xml' });
    expect(xml.status).toBe(415);
  });
});

describe('POST /auth/register (practitioner)', () => {
  const practitionerBody = () => ({ role: 'practitioner', crm: randomCrm(), email: randomEmail('dr'), password: PASSWORD, name: { given: ['Carlos'], family: 'Lima' } });

  it('needs a bearer token (401 with WWW-Authenticate: Bearer)', async () => {
    const res = await json(server, '/auth/register', practitionerBody());
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
  });

  it('refuses a token without system/*.* (403)', async () => {
    const patient = await signUp(server);
    const tokens = await tokensFor(server, patient.email);
    const res = await json(server, '/auth/register', practitionerBody(), { authorization: `Bearer ${tokens.access_token}` });
    expect(res.status).toBe(403);
  });

  it('creates the account and a Practitioner with the CRM identifier; 409 when the CRM is taken', async () => {
    const admin = await adminToken(server);
    const body = practitionerBody();
    const res = await json(server, '/auth/register', body, { authorization: `Bearer ${admin}` });
    expect(res.status).toBe(201);
    expect(res.body.practitioner).toMatch(/^Practitioner\//);
    const read = await server.request('GET', `/fhir/${res.body.practitioner}`);
    expect(read.body.identifier).toEqual([{ use: 'official', system: CRM_SYSTEM, value: body.crm }]);
    const again = await json(server, '/auth/register', { ...practitionerBody(), crm: body.crm }, { authorization: `Bearer ${admin}` });
    expect(again.status).toBe(409);
  });

  it('answers 400 for an invalid CRM', async () => {
    const admin = await adminToken(server);
    const res = await json(server, '/auth/register', { ...practitionerBody(), crm: 'XX-123' }, { authorization: `Bearer ${admin}` });
    expect(res.status).toBe(400);
    expect(res.body.issue[0].expression).toEqual(['crm']);
  });
});
