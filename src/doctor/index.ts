// The doctor's public face: check a storage URL end to end ("test connection").
export { runDoctor, type DoctorReport, type DoctorCheck, type CheckStatus, type DoctorOptions } from './doctor.js';
