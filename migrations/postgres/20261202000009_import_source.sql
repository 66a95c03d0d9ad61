-- Where an imported comment came from (`wxr:<post id>:<comment id>`,
-- `disqus:<post id>`, `isso:<id>`, or the source id of an exported comment):
-- importing the same file again finds its comments here and adds nothing.
-- NULL for comments submitted to this service; NULLs never collide.
ALTER TABLE comments ADD COLUMN source_id TEXT;
CREATE UNIQUE INDEX comments_source ON comments (source_id);
