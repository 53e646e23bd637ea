/**
 * The scheduling data set of the search benchmark (issue 3, CONTRACT section 5), generated
 * deterministically: a directory (Locations with a position around Brazilian cities, Practitioners with a
 * CRM, PractitionerRoles with specialty, location, rating and price), Schedules whose actor is a
 * Practitioner and a PractitionerRole, their Slots, Patients with a CPF, and Appointments of those
 * Patients in booked Slots, each past one with the video Encounter that took place.
 * Sizes scale with `scale`; every Schedule keeps 500 Slots, so the agenda query has the same shape at any scale.
 */
import type {
  Appointment,
  CodeableConcept,
  Encounter,
  Location,
  Practitioner,
  PractitionerRole,
  Schedule,
  Slot,
} from '@medplum/fhirtypes';
import { random } from '../patients';

export const CRM_SYSTEM = 'http://fhir.healthmed.com.br/sid/crm';
export const RATING_URL = 'http://fhir.healthmed.com.br/StructureDefinition/rating';
export const PRICE_URL = 'http://fhir.healthmed.com.br/StructureDefinition/consultation-price';
/** CBO, the Brazilian occupation classification RNDS uses for specialties. */
export const SPECIALTY_SYSTEM = 'http://www.saude.gov.br/fhir/r4/CodeSystem/BRCBO';

/** Code, display, weight (clinical practice is the most common offering). */
export const SPECIALTIES: Array<[string, string, number]> = [
  ['225125', 'Médico clínico', 6],
  ['225124', 'Médico pediatra', 3],
  ['225120', 'Médico cardiologista', 2],
  ['225133', 'Médico psiquiatra', 3],
  ['225250', 'Médico ginecologista e obstetra', 3],
  ['225135', 'Médico dermatologista', 2],
  ['225112', 'Médico neurologista', 1],
  ['225270', 'Médico ortopedista e traumatologista', 2],
  ['225265', 'Médico oftalmologista', 1],
  ['225275', 'Médico otorrinolaringologista', 1],
  ['225155', 'Médico endocrinologista e metabologista', 1],
  ['225165', 'Médico gastroenterologista', 1],
  ['225127', 'Médico pneumologista', 1],
  ['225109', 'Médico nefrologista', 1],
  ['225121', 'Médico oncologista clínico', 1],
];

export interface City {
  name: string;
  uf: string;
  latitude: number;
  longitude: number;
  /** Relative share of the directory. */
  weight: number;
}

export const CITIES: City[] = [
  { name: 'São Paulo', uf: 'SP', latitude: -23.5505, longitude: -46.6333, weight: 8 },
  { name: 'Rio de Janeiro', uf: 'RJ', latitude: -22.9068, longitude: -43.1729, weight: 5 },
  { name: 'Belo Horizonte', uf: 'MG', latitude: -19.9167, longitude: -43.9345, weight: 3 },
  { name: 'Brasília', uf: 'DF', latitude: -15.7939, longitude: -47.8828, weight: 3 },
  { name: 'Salvador', uf: 'BA', latitude: -12.9714, longitude: -38.5014, weight: 2 },
  { name: 'Curitiba', uf: 'PR', latitude: -25.4284, longitude: -49.2733, weight: 2 },
  { name: 'Recife', uf: 'PE', latitude: -8.0476, longitude: -34.877, weight: 2 },
  { name: 'Porto Alegre', uf: 'RS', latitude: -30.0346, longitude: -51.2177, weight: 2 },
  { name: 'Fortaleza', uf: 'CE', latitude: -3.7319, longitude: -38.5267, weight: 2 },
  { name: 'Campinas', uf: 'SP', latitude: -22.9099, longitude: -47.0626, weight: 1 },
  { name: 'Manaus', uf: 'AM', latitude: -3.119, longitude: -60.0217, weight: 1 },
  { name: 'Goiânia', uf: 'GO', latitude: -16.6869, longitude: -49.2648, weight: 1 },
  { name: 'Belém', uf: 'PA', latitude: -1.4558, longitude: -48.4902, weight: 1 },
  { name: 'Florianópolis', uf: 'SC', latitude: -27.5954, longitude: -48.548, weight: 1 },
];

/** Locations spread up to this far from their city's centre (uniform over the disc). */
export const CITY_RADIUS_KM = 30;
export const SLOTS_PER_SCHEDULE = 500;
export const SLOT_MINUTES = 50;
const SLOTS_PER_DAY = 8;
/** The agenda starts this many weeks before the anchor; about 6 of its 12.5 weeks lie in the past. */
const WEEKS_BEFORE_ANCHOR = 6;
const DAY_MS = 86_400_000;
/** Brazil (UTC-3, no daylight saving since 2019): a local hour h is h + 3 in UTC. */
const UTC_OFFSET_HOURS = 3;
/** Series of patient() the search Patients use (0: read benchmark, 1: create benchmark). */
export const PATIENT_SERIES = 2;
/** Share of Patients that have Appointments at all. */
export const PATIENTS_WITH_APPOINTMENTS = 0.4;

export interface Sizes {
  locations: number;
  practitioners: number;
  roles: number;
  schedules: number;
  slots: number;
  patients: number;
  appointments: number;
}

export function sizes(scale: number): Sizes {
  const n = (full: number, min: number): number => Math.max(min, Math.round(full * scale));
  const schedules = n(400, 2);
  return {
    locations: n(1000, CITIES.length),
    practitioners: n(4000, 4),
    roles: n(5000, schedules),
    schedules,
    slots: schedules * SLOTS_PER_SCHEDULE,
    patients: n(50_000, 10),
    appointments: n(50_000, 10),
  };
}

function weighted<T>(items: T[], weight: (t: T) => number, rand: () => number): T {
  const total = items.reduce((s, t) => s + weight(t), 0);
  let x = rand() * total;
  for (const t of items) {
    x -= weight(t);
    if (x < 0) return t;
  }
  return items[items.length - 1];
}

const round = (x: number, digits: number): number => Number(x.toFixed(digits));

/** A point `distanceKm` from (lat, long) on `bearing` (radians), on a spherical Earth. */
export function offset(latitude: number, longitude: number, distanceKm: number, bearing: number): [number, number] {
  const r = 6371.0088;
  const d = distanceKm / r;
  const lat1 = (latitude * Math.PI) / 180;
  const lon1 = (longitude * Math.PI) / 180;
  const lat2 = Math.asin(Math.sin(lat1) * Math.cos(d) + Math.cos(lat1) * Math.sin(d) * Math.cos(bearing));
  const lon2 = lon1 + Math.atan2(Math.sin(bearing) * Math.sin(d) * Math.cos(lat1), Math.cos(d) - Math.sin(lat1) * Math.sin(lat2));
  return [(lat2 * 180) / Math.PI, (lon2 * 180) / Math.PI];
}

export function locationCity(n: number): City {
  return n < CITIES.length ? CITIES[n] : weighted(CITIES, (c) => c.weight, random(n * 31 + 7));
}

export function location(n: number): Location {
  const rand = random(n * 31 + 8);
  const city = locationCity(n);
  const [latitude, longitude] = offset(city.latitude, city.longitude, CITY_RADIUS_KM * Math.sqrt(rand()), rand() * 2 * Math.PI);
  return {
    resourceType: 'Location',
    status: 'active',
    mode: 'instance',
    name: `Clínica Health&Med ${city.name} ${n + 1}`,
    address: { city: city.name, state: city.uf, country: 'BR' },
    position: { latitude: round(latitude, 6), longitude: round(longitude, 6) },
  };
}

const DOCTOR_FAMILY = ['Silva', 'Santos', 'Oliveira', 'Souza', 'Lima', 'Costa', 'Ribeiro', 'Almeida', 'Araújo', 'Gonçalves', 'Carvalho', 'Rocha'];
const DOCTOR_GIVEN: Array<[string, 'female' | 'male']> = [
  ['Ana', 'female'], ['Beatriz', 'female'], ['Carla', 'female'], ['Helena', 'female'], ['Marina', 'female'],
  ['Bruno', 'male'], ['Eduardo', 'male'], ['Felipe', 'male'], ['Ricardo', 'male'], ['Paulo', 'male'],
];

/** Practitioner n practises in the city of its (first) Location. */
export function practitioner(n: number, city: City): Practitioner {
  const rand = random(n * 131 + 3);
  const [given, gender] = DOCTOR_GIVEN[Math.floor(rand() * DOCTOR_GIVEN.length)];
  const family = DOCTOR_FAMILY[Math.floor(rand() * DOCTOR_FAMILY.length)];
  return {
    resourceType: 'Practitioner',
    active: true,
    identifier: [{ use: 'official', system: CRM_SYSTEM, value: `${city.uf}-${String(100_000 + n).padStart(6, '0')}` }],
    name: [{ use: 'official', family, given: [given], prefix: [gender === 'female' ? 'Dra.' : 'Dr.'] }],
    gender,
    telecom: [{ system: 'email', value: `crm${city.uf.toLowerCase()}${100_000 + n}@medicos.example.com`, use: 'work' }],
  };
}

export function specialty(code: string): CodeableConcept {
  const [, display] = SPECIALTIES.find(([c]) => c === code) ?? ['', code];
  return { coding: [{ system: SPECIALTY_SYSTEM, code, display }] };
}

/** Role r belongs to practitioner r % practitioners: the first ones have two offerings. */
export function roleSpecialty(r: number): string {
  return weighted(SPECIALTIES, ([, , w]) => w, random(r * 17 + 5))[0];
}

export function rating(r: number): number {
  // Mostly good ratings, as on any marketplace: about half of the roles rate 4 or more.
  return round(5 - 2.5 * random(r * 17 + 6)() ** 1.5, 1);
}

export function practitionerRole(r: number, practitionerRef: string, locationRef: string): PractitionerRole {
  const price = 150 + 10 * Math.floor(random(r * 17 + 9)() * 36);
  return {
    resourceType: 'PractitionerRole',
    extension: [
      { url: RATING_URL, valueDecimal: rating(r) },
      { url: PRICE_URL, valueMoney: { value: price, currency: 'BRL' } },
    ],
    active: true,
    practitioner: { reference: practitionerRef },
    location: [{ reference: locationRef }],
    specialty: [specialty(roleSpecialty(r))],
    availableTime: [{ daysOfWeek: ['mon', 'tue', 'wed', 'thu', 'fri'], availableStartTime: '08:00:00', availableEndTime: '18:00:00' }],
  };
}

/** Monday 00:00 (Brazil) of the week `WEEKS_BEFORE_ANCHOR` weeks before the anchor week. */
export function agendaStart(anchor: number): number {
  const day = new Date(anchor - UTC_OFFSET_HOURS * 3_600_000);
  const midnight = Date.UTC(day.getUTCFullYear(), day.getUTCMonth(), day.getUTCDate()) + UTC_OFFSET_HOURS * 3_600_000;
  const sinceMonday = (day.getUTCDay() + 6) % 7;
  return midnight - (sinceMonday + 7 * WEEKS_BEFORE_ANCHOR) * DAY_MS;
}

/** Start (epoch ms) of slot k of schedule s: 8 slots a working day from the schedule's first hour, lunch off. */
export function slotStart(start: number, s: number, k: number): number {
  const workday = Math.floor(k / SLOTS_PER_DAY);
  const week = Math.floor(workday / 5);
  const dayOfWeek = workday % 5;
  const firstHour = 7 + (s % 4);
  const i = k % SLOTS_PER_DAY;
  const hour = firstHour + (i < 4 ? i : i + 1);
  return start + (week * 7 + dayOfWeek) * DAY_MS + hour * 3_600_000;
}

export function schedule(practitionerRef: string, roleRef: string, code: string, from: number, to: number): Schedule {
  return {
    resourceType: 'Schedule',
    active: true,
    specialty: [specialty(code)],
    actor: [{ reference: practitionerRef }, { reference: roleRef }],
    planningHorizon: { start: new Date(from).toISOString(), end: new Date(to).toISOString() },
  };
}

export type SlotStatus = 'free' | 'busy' | 'busy-unavailable';

export function slot(scheduleRef: string, start: number, status: SlotStatus): Slot {
  return {
    resourceType: 'Slot',
    schedule: { reference: scheduleRef },
    status,
    start: new Date(start).toISOString(),
    end: new Date(start + SLOT_MINUTES * 60_000).toISOString(),
  };
}

/**
 * Which slots (global index s * 500 + k) are booked: `count` of them, two thirds in the past (where most
 * of the agenda has been used) and one third ahead.
 */
export function bookedSlots(size: Sizes, isPast: (global: number) => boolean, count: number): Uint8Array {
  const rand = random(4242);
  const booked = new Uint8Array(size.slots);
  const past: number[] = [];
  const future: number[] = [];
  for (let g = 0; g < size.slots; g++) (isPast(g) ? past : future).push(g);
  const take = (pool: number[], n: number): void => {
    n = Math.min(n, pool.length);
    for (let i = 0; i < n; i++) {
      const j = i + Math.floor(rand() * (pool.length - i));
      [pool[i], pool[j]] = [pool[j], pool[i]];
      booked[pool[i]] = 1;
    }
  };
  const pastCount = Math.min(past.length, Math.round((count * 2) / 3));
  take(past, pastCount);
  take(future, count - pastCount);
  return booked;
}

/** Slot status: booked slots are busy, a few others blocked, the rest free. */
export function slotStatus(global: number, booked: Uint8Array): SlotStatus {
  if (booked[global]) return 'busy';
  return random(global * 13 + 11)() < 0.04 ? 'busy-unavailable' : 'free';
}

/** The Patient (index among the search Patients) of the n-th Appointment. */
export function appointmentPatient(n: number, patients: number): number {
  return Math.floor(random(n * 29 + 1)() * Math.max(1, Math.floor(patients * PATIENTS_WITH_APPOINTMENTS)));
}

export function appointment(
  past: boolean,
  start: number,
  code: string,
  refs: { patient: string; practitioner: string; slot: string },
): Appointment {
  return {
    resourceType: 'Appointment',
    status: past ? 'fulfilled' : 'booked',
    specialty: [specialty(code)],
    description: 'Teleconsulta',
    start: new Date(start).toISOString(),
    end: new Date(start + SLOT_MINUTES * 60_000).toISOString(),
    minutesDuration: SLOT_MINUTES,
    slot: [{ reference: refs.slot }],
    created: new Date(start - 10 * DAY_MS).toISOString(),
    participant: [
      { actor: { reference: refs.patient }, required: 'required', status: 'accepted' },
      { actor: { reference: refs.practitioner }, required: 'required', status: 'accepted' },
    ],
  };
}

/** The video consultation of a fulfilled Appointment. */
export function encounter(start: number, refs: { patient: string; practitioner: string; appointment: string }): Encounter {
  return {
    resourceType: 'Encounter',
    status: 'finished',
    class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'VR', display: 'virtual' },
    subject: { reference: refs.patient },
    participant: [{ individual: { reference: refs.practitioner } }],
    appointment: [{ reference: refs.appointment }],
    period: { start: new Date(start).toISOString(), end: new Date(start + SLOT_MINUTES * 60_000).toISOString() },
  };
}

export { DAY_MS, UTC_OFFSET_HOURS };
