/**
 * The directory (CONTRACT section 4): who offers care where and when. Every signed-in caller holding a read
 * or search scope for one of these types (patient/, user/ or system/, or a wildcard) reads and searches all
 * of it; writing it stays with what each role's rules allow (an admin client, a practitioner's own
 * Schedules and Slots).
 */
export const DIRECTORY_TYPES: ReadonlySet<string> = new Set([
  'Practitioner',
  'PractitionerRole',
  'Location',
  'Organization',
  'HealthcareService',
  'Schedule',
  'Slot',
]);

export const isDirectoryType = (resourceType: string): boolean => DIRECTORY_TYPES.has(resourceType);
