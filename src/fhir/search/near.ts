/**
 * The special parameter `near` of Location (https://hl7.org/fhir/R4/location.html#positional):
 * `latitude|longitude|distance|units`, WGS84 degrees; units km (the default), m, or miles ([mi_i], mi).
 * Without a distance, "near" means within DEFAULT_KM.
 */
import type { Condition } from '../../storage/search';
import { badRequest } from '../outcomes';
import type { ParamContext } from './parameter';
import { splitOr, splitUnescaped } from './values';

const DEFAULT_KM = 5;
const KM_PER_UNIT: Record<string, number> = { km: 1, m: 0.001, '[mi_i]': 1.609344, mi: 1.609344, '[mi_us]': 1.609347 };

export function nearCondition(p: ParamContext, modifier: string | undefined, value: string): Condition {
  if (modifier !== undefined) throw badRequest(`Unknown modifier :${modifier} for near`, p.name);
  const any = splitOr(value).map((v): Condition => {
    const [lat, long, distance, units] = splitUnescaped(v, '|');
    const latitude = Number(lat);
    const longitude = Number(long);
    const factor = KM_PER_UNIT[units || 'km'];
    const km = distance ? Number(distance) * factor : DEFAULT_KM;
    const invalid =
      !lat || !long || !Number.isFinite(latitude) || !Number.isFinite(longitude) || Math.abs(latitude) > 90 || Math.abs(longitude) > 180;
    if (invalid || factor === undefined || !Number.isFinite(km) || km < 0) {
      throw badRequest(`Invalid near for ${p.name}: ${v} (expected latitude|longitude|distance|units)`, p.name);
    }
    return { kind: 'near', latitude, longitude, km };
  });
  return any.length === 1 ? any[0] : { kind: 'or', any };
}
