-- The language of the page a comment was written on (a BCP 47 tag, as the
-- widget or form sent it in `lang`), so that mail to its author speaks it.
-- NULL: not said (comments from before, clients that do not send it).
ALTER TABLE comments ADD COLUMN lang TEXT;
