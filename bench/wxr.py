"""A WordPress export (WXR 1.2) of COMMENTS comments for the import benchmarks.

    python3 bench/wxr.py PATH COMMENTS

Posts of 100 comments each (post N's permalink is https://blog.example/N/post-N/,
so its thread is /N/post-N/), half of them replies to an earlier comment of their
post, 90 % approved, 5 % pending, 3 % spam, 2 % trash; each post carries 300 words
of text that the importer reads and drops. Deterministic (seeded). Used by
bench/import.sh and bench/mem_peak.py.
"""
import random, sys
path, total = sys.argv[1], int(sys.argv[2])
random.seed(12)
per_post = 100
statuses = ["1"] * 90 + ["0"] * 5 + ["spam"] * 3 + ["trash"] * 2
words = ("comment reader thanks agree point post really nice question answer "
         "because think why how example markdown link quote").split()
with open(path, "w", encoding="utf-8") as out:
    out.write('<?xml version="1.0" encoding="UTF-8" ?>\n<rss version="2.0" '
              'xmlns:content="http://purl.org/rss/1.0/modules/content/" '
              'xmlns:wp="http://wordpress.org/export/1.2/">\n<channel>\n'
              '<title>Bench</title><wp:wxr_version>1.2</wp:wxr_version>\n')
    comment_id = 0
    for post in range(1, total // per_post + 1):
        out.write(f'<item><title>Post {post}</title><link>https://blog.example/{post}/post-{post}/</link>'
                  f'<guid isPermaLink="false">https://blog.example/?p={post}</guid>'
                  f'<content:encoded><![CDATA[<p>{" ".join(random.choices(words, k=300))}</p>]]></content:encoded>'
                  f'<wp:post_id>{post}</wp:post_id><wp:comment_status>open</wp:comment_status>'
                  f'<wp:post_name>post-{post}</wp:post_name><wp:post_type>post</wp:post_type>\n')
        first = comment_id + 1
        for n in range(per_post):
            comment_id += 1
            # Half are replies to an earlier comment of the same post.
            parent = random.randrange(first, comment_id) if n and random.random() < 0.5 else 0
            minute = n % 60
            text = " ".join(random.choices(words, k=random.randrange(8, 60)))
            out.write(
                f'<wp:comment><wp:comment_id>{comment_id}</wp:comment_id>'
                f'<wp:comment_author><![CDATA[Reader {comment_id % 5000} Zoë]]></wp:comment_author>'
                f'<wp:comment_author_email><![CDATA[reader{comment_id % 5000}@reader.example]]></wp:comment_author_email>'
                f'<wp:comment_author_url>https://reader{comment_id % 5000}.example/</wp:comment_author_url>'
                f'<wp:comment_author_IP><![CDATA[192.0.2.{comment_id % 250}]]></wp:comment_author_IP>'
                f'<wp:comment_date>2020-01-01 {n // 60:02d}:{minute:02d}:00</wp:comment_date>'
                f'<wp:comment_date_gmt>2020-01-01 {n // 60:02d}:{minute:02d}:00</wp:comment_date_gmt>'
                f'<wp:comment_content><![CDATA[{text}, <b>bold</b> and <a href="https://wordpress.org/">a link</a>.\n\n'
                f'{text}]]></wp:comment_content>'
                f'<wp:comment_approved>{random.choice(statuses)}</wp:comment_approved>'
                f'<wp:comment_type>comment</wp:comment_type><wp:comment_parent>{parent}</wp:comment_parent>'
                f'<wp:comment_user_id>0</wp:comment_user_id></wp:comment>\n')
        out.write('</item>\n')
    out.write('</channel>\n</rss>\n')
