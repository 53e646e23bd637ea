/**
 * The data of the `booking` benchmark (issue 12): one doctor's Schedule with enough consecutive free 50-minute
 * Slots that every booking of a run takes a new one, loaded through our FHIR API (the Slot rules run), and a
 * patient who books them with their own token. The baseline books rows of its own table (bench/baseline.ts).
 */
import type { Bundle, BundleEntry } from '@medplum/fhirtypes';
import { patientToken } from './patientToken';

export interface BookingData {
  /** Pair i: a doctor, their free Slots in time order, and a patient who books them. */
  pairs: { practitioner: string; slotIds: string[]; patient: { patientId: string; headers: Record<string, string> } }[];
}

/** Doctors (each with their own patient): bookings of different doctors run side by side, as in real use. */
export const BOOKING_PAIRS = 16;
const PER_TRANSACTION = 500;
const LOAD_CONCURRENCY = 4;
const SLOT_MS = 50 * 60_000;
const DAY_MS = 86_400_000;

async function postJson(url: string, body: unknown, headers: Record<string, string>): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/fhir+json', accept: 'application/fhir+json', ...headers }, body: JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

async function doctorWithSlots(fhir: string, adminHeaders: Record<string, string>, slots: number, n: number): Promise<{ practitioner: string; slotIds: string[] }> {
  const dr = await postJson(`${fhir}/Practitioner`, { resourceType: 'Practitioner', name: [{ given: ['Bench'], family: `Agenda ${n}` }] }, adminHeaders);
  if (dr.status !== 201) throw new Error(`Practitioner: ${dr.status}`);
  const practitioner = `Practitioner/${String(dr.json.id)}`;
  const schedule = await postJson(`${fhir}/Schedule`, { resourceType: 'Schedule', active: true, actor: [{ reference: practitioner }] }, adminHeaders);
  if (schedule.status !== 201) throw new Error(`Schedule: ${schedule.status}`);
  // Consecutive Slots from tomorrow on: none overlaps another, so one patient can hold them all.
  const first = Math.ceil((Date.now() + DAY_MS) / SLOT_MS) * SLOT_MS;
  const slotIds: string[] = [];
  for (let from = 0; from < slots; from += PER_TRANSACTION) {
    const entry: BundleEntry[] = [];
    for (let i = from; i < Math.min(slots, from + PER_TRANSACTION); i++) {
      const start = first + i * SLOT_MS;
      entry.push({
        resource: { resourceType: 'Slot', schedule: { reference: `Schedule/${String(schedule.json.id)}` }, status: 'free', start: new Date(start).toISOString(), end: new Date(start + SLOT_MS).toISOString() },
        request: { method: 'POST', url: 'Slot' },
      });
    }
    const res = await postJson(fhir, { resourceType: 'Bundle', type: 'transaction', entry }, adminHeaders);
    if (res.status !== 200) throw new Error(`Slots: ${res.status} ${JSON.stringify(res.json).slice(0, 300)}`);
    for (const e of (res.json as unknown as Bundle).entry ?? []) {
      const id = /\/Slot\/([^/]+)/.exec(String(e.response?.location))?.[1];
      if (id) slotIds.push(id);
    }
  }
  return { practitioner, slotIds };
}

export async function loadBookingData(origin: string, adminHeaders: Record<string, string>, slots: number): Promise<BookingData> {
  const started = Date.now();
  const perDoctor = Math.ceil(slots / BOOKING_PAIRS);
  const pairs: BookingData['pairs'] = new Array(BOOKING_PAIRS);
  // Doctors LOAD_CONCURRENCY at a time (each doctor's Slots in order, in transaction Bundles)
  let next = 0;
  await Promise.all(
    Array.from({ length: LOAD_CONCURRENCY }, async () => {
      for (let n = next++; n < BOOKING_PAIRS; n = next++) {
        const doctor = await doctorWithSlots(`${origin}/fhir`, adminHeaders, perDoctor, n);
        pairs[n] = { ...doctor, patient: await patientToken(origin, 'launch/patient patient/*.rs patient/Appointment.c') };
      }
    }),
  );
  console.log(`loaded ${BOOKING_PAIRS} Schedules with ${perDoctor} free Slots each, and a patient for each, in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return { pairs };
}
