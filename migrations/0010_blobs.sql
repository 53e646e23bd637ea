-- Encrypted attachments (issue 13, src/blobs/). The Binary resource is stored like any other, without `data`;
-- its bytes are an encrypted object in the object store (files under DATA_DIR, or S3), and this table links
-- each Binary version that has content to its object. `data_key` is the object's data key wrapped under the
-- master key `key_id` (local:<fingerprint> or kms:<key ARN>), bound to the Binary id and `patient` (the
-- encryption context): it is the only copy of the key, so an object without a row cannot be decrypted.
-- `sha1` (base64, of the plaintext) is what a DocumentReference's attachment.hash shows. A version that
-- changes only metadata (a patch of contentType) gets a row naming the same object.
CREATE TABLE binary_content (
  binary_id text NOT NULL,
  version_id integer NOT NULL,
  object_key text NOT NULL,
  patient text NOT NULL,
  size bigint NOT NULL,
  sha1 text NOT NULL,
  key_id text NOT NULL,
  data_key bytea NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (binary_id, version_id)
);
CREATE INDEX binary_content_key ON binary_content (key_id);
CREATE INDEX binary_content_object ON binary_content (object_key);
