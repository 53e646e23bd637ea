/**
 * Which attachments the server takes (UPLOAD_CONTENT_TYPES) and the first bytes each type must start with where
 * it has a signature: a PDF `%PDF-` (ISO 32000-1 7.5.2), PNG its 8-byte signature (RFC 2083 3.1), JPEG an SOI
 * marker followed by another marker (FF D8 FF), DICOM part 10 `DICM` after a 128-byte preamble (PS3.10 7.1).
 */
export const DEFAULT_CONTENT_TYPES = ['application/pdf', 'image/png', 'image/jpeg', 'application/dicom', 'text/plain'];

interface Signature {
  offset: number;
  bytes: Buffer;
}

const SIGNATURES: Record<string, Signature> = {
  'application/pdf': { offset: 0, bytes: Buffer.from('%PDF-', 'latin1') },
  'image/png': { offset: 0, bytes: Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]) },
  'image/jpeg': { offset: 0, bytes: Buffer.from([0xff, 0xd8, 0xff]) },
  'application/dicom': { offset: 128, bytes: Buffer.from('DICM', 'latin1') },
};

/** How many leading bytes the signature check needs. */
export const SIGNATURE_BYTES = 132;

/** Whether `head` (the first SIGNATURE_BYTES of the content, or all of it) fits the type's signature. */
export function matchesSignature(contentType: string, head: Buffer): boolean {
  const sig = SIGNATURES[contentType];
  if (!sig) return true;
  return head.length >= sig.offset + sig.bytes.length && head.subarray(sig.offset, sig.offset + sig.bytes.length).equals(sig.bytes);
}
