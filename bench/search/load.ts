/**
 * Loads the search data set (bench/search/data.ts) through our server's FHIR API, targets first because
 * the server refuses references to resources that do not exist:
 * Locations (batch) -> Practitioners with their PractitionerRoles (transactions, urn:uuid references)
 * -> each Schedule with its 500 Slots (one transaction) -> Patients (batch) -> Appointments with the
 * Encounters of the past ones (transactions). Returns what the scenarios need to ask realistic questions.
 */
import { randomUUID } from 'node:crypto';
import type { Bundle, BundleEntry, Resource } from '@medplum/fhirtypes';
import { postBundles, Progress, referenceFrom, type Work } from '../bundles';
import { patient } from '../patients';
import { SEARCH_NAMES } from './names';
import {
  agendaStart,
  appointment,
  appointmentPatient,
  bookedSlots,
  encounter,
  location,
  locationCity,
  PATIENT_SERIES,
  practitioner,
  practitionerRole,
  roleSpecialty,
  schedule,
  sizes,
  slot,
  slotStart,
  slotStatus,
  SLOTS_PER_SCHEDULE,
  type Sizes,
  PATIENTS_WITH_APPOINTMENTS,
  SLOT_MINUTES,
} from './data';

/** What the scenarios use; saved with the database so `--reuse` can skip the load. */
export interface SearchData {
  scale: number;
  sizes: Sizes;
  /** "Now" of the data set (epoch ms): Slots and Appointments before it are past. */
  anchor: number;
  /** Monday 00:00 (Brazil) of the first week of every agenda. */
  agendaStart: number;
  scheduleIds: string[];
  /** Patients with at least one Appointment. */
  appointmentPatientIds: string[];
  /** Resources created and seconds taken, for the report. */
  loaded: { resources: number; seconds: number };
}

const BATCH = 500;
/** Appointments per transaction (each past one brings its Encounter: at most 2 x this many entries). */
const APPOINTMENTS_PER_TRANSACTION = 200;
/** Practitioners per transaction (with their PractitionerRoles). */
const PRACTITIONERS_PER_TRANSACTION = 150;

function post(resource: Resource, fullUrl?: string): BundleEntry {
  return { ...(fullUrl ? { fullUrl } : {}), resource, request: { method: 'POST', url: resource.resourceType } };
}

function* ranges(total: number, size: number): Generator<[number, number]> {
  for (let from = 0; from < total; from += size) yield [from, Math.min(total, from + size)];
}

/** Fills `refs[from..]` from a response, entry i being resource from + i; counts the entries that failed. */
function collect(refs: Array<string | undefined>, from: number, response: Bundle, expected: number): number {
  let failed = 0;
  for (let i = 0; i < expected; i++) {
    const entry = response.entry?.[i];
    const ref = entry?.response?.status?.startsWith('201') ? referenceFrom(entry) : undefined;
    if (ref) refs[from + i] = ref;
    else failed++;
  }
  return failed;
}

function bundle(type: 'batch' | 'transaction', entry: BundleEntry[]): Bundle {
  return { resourceType: 'Bundle', type, entry };
}

export async function loadSearchData(
  fhirBase: string,
  scale: number,
  concurrency: number,
  headers: Record<string, string> = {},
): Promise<SearchData> {
  const size = sizes(scale);
  const anchor = Date.now();
  const start = agendaStart(anchor);
  const started = process.hrtime.bigint();
  let resources = 0;
  console.log(
    `  ${size.locations} Locations, ${size.practitioners} Practitioners, ${size.roles} PractitionerRoles, ` +
      `${size.schedules} Schedules, ${size.slots} Slots, ${size.patients} Patients, ${size.appointments} Appointments (+ Encounters)`,
  );

  // Locations, by city.
  const locations: Array<string | undefined> = new Array(size.locations);
  const byCity = new Map<string, number[]>();
  for (let n = 0; n < size.locations; n++) {
    const city = locationCity(n).name;
    byCity.set(city, [...(byCity.get(city) ?? []), n]);
  }
  let progress = new Progress('Location', size.locations);
  let failed = 0;
  await postBundles(
    fhirBase,
    (function* (): Generator<Work<[number, number]>> {
      for (const [from, to] of ranges(size.locations, BATCH)) {
        const entry = [];
        for (let n = from; n < to; n++) entry.push(post(location(n)));
        yield { bundle: bundle('batch', entry), context: [from, to] };
      }
    })(),
    concurrency,
    ([from, to], response) => {
      failed += collect(locations, from, response, to - from);
      progress.add(to - from);
    },
    headers,
  );
  progress.finish(failed);
  resources += size.locations - failed;

  // Practitioners and their roles: role r belongs to practitioner r % P and works in that practitioner's city.
  const practitioners: Array<string | undefined> = new Array(size.practitioners);
  const roles: Array<string | undefined> = new Array(size.roles);
  const roleLocation = (r: number): number => {
    const p = r % size.practitioners;
    const first = p % size.locations;
    const inCity = byCity.get(locationCity(first).name)!;
    return inCity[(inCity.indexOf(first) + 7 * Math.floor(r / size.practitioners)) % inCity.length];
  };
  progress = new Progress('Practitioner+PractitionerRole', size.practitioners + size.roles);
  await postBundles(
    fhirBase,
    (function* (): Generator<Work<{ ps: number[]; rs: number[] }>> {
      for (const [from, to] of ranges(size.practitioners, PRACTITIONERS_PER_TRANSACTION)) {
        const entry: BundleEntry[] = [];
        const ps: number[] = [];
        const rs: number[] = [];
        for (let p = from; p < to; p++) {
          const fullUrl = `urn:uuid:${randomUUID()}`;
          entry.push(post(practitioner(p, locationCity(p % size.locations)), fullUrl));
          ps.push(p);
          for (let r = p; r < size.roles; r += size.practitioners) {
            const locationRef = locations[roleLocation(r)];
            if (!locationRef) continue;
            entry.push(post(practitionerRole(r, fullUrl, locationRef)));
            rs.push(r);
          }
        }
        // Practitioners first, then roles: the response lists entries in request order.
        entry.sort((a, b) => Number(a.resource!.resourceType === 'PractitionerRole') - Number(b.resource!.resourceType === 'PractitionerRole'));
        yield { bundle: bundle('transaction', entry), context: { ps, rs } };
      }
    })(),
    concurrency,
    ({ ps, rs }, response) => {
      ps.forEach((p, i) => (practitioners[p] = referenceFrom(response.entry?.[i])));
      rs.forEach((r, i) => (roles[r] = referenceFrom(response.entry?.[ps.length + i])));
      progress.add(ps.length + rs.length);
    },
    headers,
  );
  progress.finish();
  resources += size.practitioners + size.roles;

  // Schedules, each with its Slots in one transaction; booked Slots are busy.
  const isPast = (g: number): boolean =>
    slotStart(start, Math.floor(g / SLOTS_PER_SCHEDULE), g % SLOTS_PER_SCHEDULE) < anchor;
  const booked = bookedSlots(size, isPast, size.appointments);
  const schedules: Array<string | undefined> = new Array(size.schedules);
  const slots: Array<string | undefined> = new Array(size.slots);
  const scheduleRole = (s: number): number => Math.floor((s * size.roles) / size.schedules);
  const horizonEnd = slotStart(start, 0, SLOTS_PER_SCHEDULE - 1) + 7 * 86_400_000;
  progress = new Progress('Schedule+Slot', size.schedules + size.slots);
  await postBundles(
    fhirBase,
    (function* (): Generator<Work<number>> {
      for (let s = 0; s < size.schedules; s++) {
        const r = scheduleRole(s);
        const fullUrl = `urn:uuid:${randomUUID()}`;
        const entry = [post(schedule(practitioners[r % size.practitioners]!, roles[r]!, roleSpecialty(r), start, horizonEnd), fullUrl)];
        for (let k = 0; k < SLOTS_PER_SCHEDULE; k++) {
          const g = s * SLOTS_PER_SCHEDULE + k;
          entry.push(post(slot(fullUrl, slotStart(start, s, k), slotStatus(g, booked))));
        }
        yield { bundle: bundle('transaction', entry), context: s };
      }
    })(),
    concurrency,
    (s, response) => {
      schedules[s] = referenceFrom(response.entry?.[0]);
      for (let k = 0; k < SLOTS_PER_SCHEDULE; k++) slots[s * SLOTS_PER_SCHEDULE + k] = referenceFrom(response.entry?.[k + 1]);
      progress.add(1 + SLOTS_PER_SCHEDULE);
    },
    headers,
  );
  progress.finish();
  resources += size.schedules + size.slots;

  // Patients.
  const patients: Array<string | undefined> = new Array(size.patients);
  progress = new Progress('Patient', size.patients);
  failed = 0;
  await postBundles(
    fhirBase,
    (function* (): Generator<Work<[number, number]>> {
      for (const [from, to] of ranges(size.patients, BATCH)) {
        const entry = [];
        for (let n = from; n < to; n++) entry.push(post(patient(n, PATIENT_SERIES, SEARCH_NAMES)));
        yield { bundle: bundle('batch', entry), context: [from, to] };
      }
    })(),
    concurrency,
    ([from, to], response) => {
      failed += collect(patients, from, response, to - from);
      progress.add(to - from);
    },
    headers,
  );
  progress.finish(failed);
  resources += size.patients - failed;

  // Appointments in the booked Slots, with the Encounter of each past one.
  const bookedList: number[] = [];
  for (let g = 0; g < size.slots; g++) if (booked[g]) bookedList.push(g);
  const withAppointments = new Set<string>();
  let encounters = 0;
  // The server refuses what a real agenda cannot hold: a patient or a doctor with two live (booked) consultations
  // at once. A future booking whose patient is busy then goes to the next free patient; one whose doctor is busy
  // (through another of their PractitionerRoles) is left out, its Slot staying busy.
  const appointmentPool = Math.max(1, Math.floor(size.patients * PATIENTS_WITH_APPOINTMENTS));
  const busy = new Map<string, number[]>();
  const isBusy = (who: string, when: number) => (busy.get(who) ?? []).some((t) => Math.abs(t - when) < SLOT_MINUTES * 60_000);
  const hold = (who: string, when: number) => busy.set(who, [...(busy.get(who) ?? []), when]);
  progress = new Progress('Appointment+Encounter', bookedList.length + bookedList.filter(isPast).length);
  await postBundles(
    fhirBase,
    (function* (): Generator<Work<number>> {
      for (const [from, to] of ranges(bookedList.length, APPOINTMENTS_PER_TRANSACTION)) {
        const entry: BundleEntry[] = [];
        for (let n = from; n < to; n++) {
          const g = bookedList[n];
          const s = Math.floor(g / SLOTS_PER_SCHEDULE);
          const r = scheduleRole(s);
          const when = slotStart(start, s, g % SLOTS_PER_SCHEDULE);
          const practitionerRef = practitioners[r % size.practitioners]!;
          let p = appointmentPatient(n, size.patients);
          if (when >= anchor) {
            if (isBusy(practitionerRef, when)) continue;
            for (let tries = 0; tries < appointmentPool && patients[p] && isBusy(patients[p]!, when); tries++) p = (p + 1) % appointmentPool;
          }
          const patientRef = patients[p];
          if (!patientRef || !slots[g] || (when >= anchor && isBusy(patientRef, when))) continue;
          if (when >= anchor) {
            hold(patientRef, when);
            hold(practitionerRef, when);
          }
          withAppointments.add(patientRef);
          const fullUrl = `urn:uuid:${randomUUID()}`;
          entry.push(post(appointment(when < anchor, when, roleSpecialty(r), { patient: patientRef, practitioner: practitionerRef, slot: slots[g]! }), fullUrl));
          if (when < anchor) {
            entry.push(post(encounter(when, { patient: patientRef, practitioner: practitionerRef, appointment: fullUrl })));
          }
        }
        yield { bundle: bundle('transaction', entry), context: entry.length };
      }
    })(),
    concurrency,
    (count) => {
      progress.add(count);
      resources += count;
    },
    headers,
  );
  encounters = bookedList.filter(isPast).length;
  progress.finish();

  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  console.log(
    `search data: ${resources} resources (${encounters} Encounters) in ${seconds.toFixed(1)} s, ${(resources / seconds).toFixed(0)} resources/s overall`,
  );
  const ids = (refs: Array<string | undefined>): string[] => refs.filter((r): r is string => !!r).map((r) => r.split('/')[1]);
  return {
    scale,
    sizes: size,
    anchor,
    agendaStart: start,
    scheduleIds: ids(schedules),
    appointmentPatientIds: ids([...withAppointments]),
    loaded: { resources, seconds },
  };
}
