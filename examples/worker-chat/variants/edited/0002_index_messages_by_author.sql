-- EDITED ON PURPOSE: same file name (version 2) as ../../migrations/, other
-- text (the index also covers sent_at). Deployed over objects that applied the
-- original, the executor refuses the run (`edited`, naming this file) and
-- changes nothing.
CREATE INDEX messages_by_author ON messages (author, sent_at, id);
