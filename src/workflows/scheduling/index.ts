/**
 * Scheduling (CONTRACT section 5): availability (Schedule rules and the Slots they make), booking
 * (an Appointment takes a free Slot), the doctor's answer and the patient's cancellation.
 */
import type { TypeHook } from '..';
import { bookingHook } from './booking';
import { slotHook } from './slots';
import { scheduleHook } from './schedule';

export interface SchedulingSettings {
  /** Base of the consultation rooms (VIDEO_BASE_URL). */
  videoBaseUrl: string;
}

export function schedulingHooks(settings: SchedulingSettings): Record<string, TypeHook> {
  return {
    Appointment: bookingHook(settings),
    Slot: slotHook,
    Schedule: scheduleHook(),
  };
}
