/**
 * The searches of issue 3, as the Health&Med apps send them. Each request generator is seeded, so ours and
 * the baseline get the same sequence of questions. Targets: >= 0.5 of the baseline's throughput, p95 < 20 ms.
 */
import { CPF_SYSTEM, patientCpf, random } from '../patients';
import type { BenchData, RequestSpec, Scenario, Target } from '../scenarios';
import { CITIES, DAY_MS, offset, PATIENT_SERIES, SPECIALTIES, UTC_OFFSET_HOURS } from './data';
import type { SearchData } from './load';
import { namePrefix } from './names';

const FHIR_JSON = 'application/fhir+json';
const TARGET_RATIO = 0.5;
const P95_TARGET_MS = 20;
/** Why Encounter:appointment: see the `appointments` scenario below. */
export const APPOINTMENT_REVINCLUDE = 'Encounter:appointment';

function searchData(data: BenchData): SearchData {
  if (!data.search) throw new Error('the search data set was not loaded');
  return data.search;
}

const iso = (ms: number): string => new Date(ms).toISOString().replace('.000Z', 'Z');

/** Local (Brazil) midnight of the day holding `ms`. */
function midnight(ms: number): number {
  const local = ms - UTC_OFFSET_HOURS * 3_600_000;
  return local - (local % DAY_MS) + UTC_OFFSET_HOURS * 3_600_000;
}

function search(
  name: string,
  make: (rand: () => number, data: SearchData) => string,
): Scenario {
  return {
    name,
    target: TARGET_RATIO,
    p95TargetMs: P95_TARGET_MS,
    expectStatus: 200,
    needs: 'search',
    search: true,
    requests(target: Target, data: BenchData): () => RequestSpec {
      const rand = random([...name].reduce((h, c) => Math.imul(h, 31) + c.charCodeAt(0), 7));
      const d = searchData(data);
      return () => ({ method: 'GET', path: target.fhirPath + make(rand, d), headers: { accept: FHIR_JSON } });
    },
  };
}

function pick<T>(rand: () => number, list: readonly T[]): T {
  return list[Math.floor(rand() * list.length)];
}

function weighted<T>(rand: () => number, list: readonly T[], weight: (t: T) => number): T {
  let x = rand() * list.reduce((s, t) => s + weight(t), 0);
  for (const t of list) if ((x -= weight(t)) < 0) return t;
  return list[list.length - 1];
}

export const searchScenarios: Scenario[] = [
  // A patient opens a doctor's agenda: the free slots of one day or one week, in the next five weeks.
  search('slot-agenda', (rand, d) => {
    const t1 = midnight(d.anchor) + Math.floor(rand() * 35) * DAY_MS;
    const t2 = t1 + (rand() < 0.4 ? 1 : 7) * DAY_MS;
    return (
      `/Slot?schedule=Schedule/${pick(rand, d.scheduleIds)}&status=free` +
      `&start=ge${iso(t1)}&start=lt${iso(t2)}&_sort=start&_count=20`
    );
  }),
  // An EHR looks a patient up by CPF.
  search('patient-cpf', (rand, d) => {
    const cpf = patientCpf(Math.floor(rand() * d.sizes.patients), PATIENT_SERIES);
    return `/Patient?identifier=${encodeURIComponent(`${CPF_SYSTEM}|${cpf}`)}`;
  }),
  // A receptionist types the first letters of a family name, in any case, with or without accents.
  search('patient-name', (rand) => `/Patient?name=${encodeURIComponent(namePrefix(rand))}`),
  // The app's doctor search (CONTRACT section 5): a specialty within 20 km of the patient, rated 4 or more.
  search('doctor-near', (rand) => {
    const [code] = weighted(rand, SPECIALTIES, ([, , w]) => w);
    const city = weighted(rand, CITIES, (c) => c.weight);
    const [lat, long] = offset(city.latitude, city.longitude, 5 * Math.sqrt(rand()), rand() * 2 * Math.PI);
    return (
      `/PractitionerRole?specialty=${code}&location.near=${lat.toFixed(4)}|${long.toFixed(4)}|20|km` +
      `&rating=ge4&_include=PractitionerRole:practitioner`
    );
  }),
  // The patient's "my consultations" screen: appointments from some weeks back on, with the video
  // consultation (Encounter.appointment) of each one that took place, which the screen shows as "done"
  // and links to. Of the revincludes an Appointment has in R4 (AppointmentResponse, Encounter,
  // CarePlan:activity-reference, ImagingStudy:basedon, Provenance:target, AuditEvent:entity), Encounter is
  // the one our workflow creates and an app reads; AppointmentResponse is unused (CONTRACT section 5:
  // practitioners answer by updating their participant), AuditEvent is not for patients' screens.
  search('appointments', (rand, d) => {
    const since = midnight(d.anchor) - Math.floor(rand() * 42) * DAY_MS;
    return (
      `/Appointment?patient=Patient/${pick(rand, d.appointmentPatientIds)}&date=ge${iso(since)}` +
      `&_revinclude=${APPOINTMENT_REVINCLUDE}`
    );
  }),
];
