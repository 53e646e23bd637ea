/**
 * Patient compartment membership from the R4 CompartmentDefinition
 * (https://hl7.org/fhir/R4/compartmentdefinition-patient.html), by the SearchParameters' FHIRPath.
 */
import type { Resource } from '@medplum/fhirtypes';
import { compartmentParams, compartmentPatients, inPatientCompartment } from '../../src/access/compartment';
import { BASE } from './evaluate';

const ids = (r: Resource) => [...compartmentPatients(r, BASE)].sort();

test('the parameters come from the CompartmentDefinition', () => {
  expect(compartmentParams('Observation')).toEqual(['subject', 'performer']);
  expect(compartmentParams('Appointment')).toEqual(['actor']);
  expect(compartmentParams('Encounter')).toEqual(['subject']);
  expect(compartmentParams('DocumentReference')).toEqual(['subject', 'author']);
  expect(compartmentParams('AuditEvent')).toEqual(['patient']);
  expect(compartmentParams('Consent')).toEqual(['patient']);
  // not in any patient's compartment
  expect(compartmentParams('Practitioner')).toEqual([]);
  expect(compartmentParams('Binary')).toEqual([]);
  expect(compartmentParams('ValueSet')).toEqual([]);
  // Patient.link is left out on purpose: a patient reaches only their own Patient
  expect(compartmentParams('Patient')).toEqual([]);
});

test.each<[string, Resource, string[]]>([
  ['Observation.subject', { resourceType: 'Observation', status: 'final', code: {}, subject: { reference: 'Patient/A' } }, ['A']],
  [
    'Observation.performer (a patient-reported value)',
    { resourceType: 'Observation', status: 'final', code: {}, subject: { reference: 'Patient/A' }, performer: [{ reference: 'Patient/B' }] },
    ['A', 'B'],
  ],
  ['Observation about a Group', { resourceType: 'Observation', status: 'final', code: {}, subject: { reference: 'Group/G' } }, []],
  [
    'Appointment.participant.actor',
    {
      resourceType: 'Appointment',
      status: 'booked',
      participant: [
        { actor: { reference: 'Patient/A' }, status: 'accepted' },
        { actor: { reference: 'Practitioner/P' }, status: 'accepted' },
      ],
    },
    ['A'],
  ],
  ['Encounter.subject', { resourceType: 'Encounter', status: 'finished', class: {}, subject: { reference: 'Patient/A' } }, ['A']],
  [
    'DocumentReference.subject and .author',
    { resourceType: 'DocumentReference', status: 'current', content: [], subject: { reference: 'Patient/A' }, author: [{ reference: 'Practitioner/P' }] },
    ['A'],
  ],
  [
    'AuditEvent.agent.who and .entity.what (the patient parameter)',
    {
      resourceType: 'AuditEvent',
      type: {},
      recorded: '2024-01-01T00:00:00Z',
      source: { observer: { reference: 'Device/server' } },
      agent: [{ requestor: true, who: { reference: 'Practitioner/P' } }],
      entity: [{ what: { reference: 'Patient/A' } }, { what: { reference: 'DocumentReference/D' } }],
    },
    ['A'],
  ],
  ['Consent.patient', { resourceType: 'Consent', status: 'active', scope: {}, category: [], patient: { reference: 'Patient/A' } }, ['A']],
  ['Schedule.actor', { resourceType: 'Schedule', actor: [{ reference: 'Patient/A' }, { reference: 'Practitioner/P' }] }, ['A']],
  ['the Patient itself', { resourceType: 'Patient', id: 'A', link: [{ other: { reference: 'Patient/B' }, type: 'seealso' }] }, ['A']],
  ['Binary by securityContext', { resourceType: 'Binary', contentType: 'text/plain', securityContext: { reference: 'Patient/A' } }, ['A']],
  ['Binary without one', { resourceType: 'Binary', contentType: 'text/plain' }, []],
  ['absolute reference under this server', { resourceType: 'Encounter', status: 'finished', class: {}, subject: { reference: `${BASE}/Patient/A` } }, ['A']],
  [
    'absolute reference to another server',
    { resourceType: 'Encounter', status: 'finished', class: {}, subject: { reference: 'http://elsewhere.example/fhir/Patient/A' } },
    [],
  ],
  ['Practitioner (not in the compartment)', { resourceType: 'Practitioner', id: 'P' }, []],
])('%s', (_name, resource, expected) => {
  expect(ids(resource)).toEqual(expected);
});

test('inPatientCompartment', () => {
  const obs: Resource = { resourceType: 'Observation', status: 'final', code: {}, subject: { reference: 'Patient/A' } };
  expect(inPatientCompartment(obs, 'A')).toBe(true);
  expect(inPatientCompartment(obs, 'B')).toBe(false);
});
