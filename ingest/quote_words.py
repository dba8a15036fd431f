"""Quote words: the word lists and compiled patterns that `ingest.quotes` and `ingest.speakers` use.

Speech verbs ("said", "pointed out"), titles and roles ("Foreign Minister", "coach"), words that are not
names (stopwords, organisation words, name particles), and the regexes built on them: name runs, sentence
ends, and the phrasings before and after a quote that name its speaker.
"""

from __future__ import annotations

import re


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_VERBS = _words("""said says say added adds told tells stressed stresses noted notes warned warns
explained explains wrote writes asked asks continued recalled recalls admitted admits acknowledged
acknowledges argued argues claimed claims insisted insists declared declares stated remarked commented
replied replies responded responds answered observed suggested suggests reiterated reiterates emphasised
emphasises emphasized emphasizes underscored underscores underlined announced announces urged urges
predicted predicts conceded concedes concluded confirmed confirms revealed reveals joked jokes quipped
quips tweeted posted testified testifies reflected mused cautioned cautions maintained maintains contended
contends affirmed reaffirmed reaffirms assured assures promised promises vowed vows pledged pledges
alleged alleges expressed expresses exclaimed boasted complained complains lamented""")
_NOT_REPORTED = _words("asked asks continued joked jokes quipped quips mused reflected exclaimed")
_NEEDS_THAT = _words("""added adds claimed claims told tells wrote writes posted tweeted replied replies
responded responds answered observed maintained maintains concluded assured assures""")
_ADV = _words("""also further then later again previously earlier once recently reportedly has had have
would will was""")
_TITLES = _words("""ag pm vp mr mrs ms miss dr prof sir dame lord lady sen rep gov gen lt col capt sgt rev
president vice minister prime foreign secretary chancellor premier governor mayor senator representative
congressman congresswoman ambassador chairman chairwoman chair chief ceo cfo coo cto executive officer
director founder owner spokesman spokeswoman spokesperson king queen prince princess pope sheikh general
commander admiral judge justice attorney prosecutor coach manager captain professor deputy speaker leader
head state affairs defense defence interior finance commerce treasury energy health education trade home
economy security labor labour agriculture transport""")
_SURNAMES = _words("king head general justice chair speaker leader judge coach state home trade")
_ROLES = _TITLES | _words("""forward striker midfielder defender goalkeeper quarterback player star singer
actor actress rapper lawmaker envoy diplomat candidate nominee author researcher scientist doctor boss
counterpart head promoter analyst economist pastor bishop rabbi imam""")
_MODS = _words("""the a an his her their its former then current visiting acting senior top new interim
outgoing""")
_ROLES_MODS = _ROLES | _MODS
_FEMALE = _words("mrs ms miss dame lady queen princess spokeswoman chairwoman congresswoman actress")
_MALE = _words("mr sir lord king prince spokesman chairman congressman")
_STOP = _words("""another the a an this that these those it its he she they we i you his her their our my
your who what when where why how there here some many most several both all other such each every few no
not one officials police experts analysts researchers critics sources others people reports documents data
statement monday tuesday wednesday thursday friday saturday sunday january february march april may june
july august september october november december jan feb mar apr jun jul aug sep sept oct nov dec today
yesterday tomorrow but and or so yet however meanwhile still if as while after before in on at for of with
by from though although because given using like during under despite since unlike following without
across until unless once whether""")
_ORG = _words("""inc corp corporation co company group office house ministry department agency bank
university college school council commission association news times post journal reuters party court
government committee institute foundation center centre service services network league club fc united
city studios labs capital partners ltd llc board union organization organisation federation authority
administration airlines motors media press tv radio magazine daily street county state states republic
kingdom new san los las santa north south east west central fort saint lake river island airport hospital
church museum stadium park project summit conference cup series festival awards pipeline research average
index""")
_PARTICLES = _words("bin ibn al de da del der di du dos la le van von el of for")
_LEAD = _words("but and so yet however meanwhile still now instead later earlier")
_PREP = _words("in on at during via through after before last this earlier to")
_LEAD_IN = [[w] for w in _PREP - {"this", "last", "earlier"}]
_ABBREV = _words("""mr mrs ms dr prof sr jr st gen col lt sgt capt gov sen rep rev inc ltd co corp vs no
u.s u.k u.n""")
_PRONOUNS = {"he": "m", "she": "f", "they": ""}
_SOURCE = -2  # the "verb offset" of `according to X`: X must be a person, not a newspaper
_UP = "A-Z" + "".join(c for c in map(chr, range(0xC0, 0x250)) if c.isupper())
_LO = "a-z" + "".join(c for c in map(chr, range(0xC0, 0x250)) if c.islower())

_BY_LETTER: dict[str, list[str]] = {}
for _w in sorted(_VERBS | {"pointed out", "points out", "called for", "calls for"}, key=len, reverse=True):
    _BY_LETTER.setdefault(_w[0], []).append(_w[1:].replace(" ", r"\s+"))
_VERB = "(?:" + "|".join(f"{c}(?:{'|'.join(ws)})" for c, ws in _BY_LETTER.items()) + ")"  # fast: by letter
_VERB_RE = re.compile(rf"\b{_VERB}\b")
_TOKEN = re.compile(rf"(?:Mr|Mrs|Ms|Dr|Prof|Sen|Rep|Gov|Gen|Lt|Col|Capt|Sgt|Rev|St|Jr|Sr)\."
                    rf"|[{_UP}]\.(?:[{_UP}]\.)*|(?:[{_LO}]{{1,3}}-)?[{_UP}][\w’'\-]*")
_RUN = re.compile(rf"\b(?=[{_UP}a-z])(?:{_TOKEN.pattern})(?:[ \t]+(?:(?:bin|ibn|al|de|da|del|van|von|of|for)"
                  rf"[ \t]+)?(?:{_TOKEN.pattern}))*")
_NAMELIKE = re.compile(rf"(?:Mc|Mac|De|Di|Da|Du|La|Le|O['’])?[{_UP}](?:[{_LO}'’\-]|-[{_UP}])+|[{_UP}]\.?")
_SUBJECT = re.compile(rf"(?:[^,\"“”\n]{{1,60}},\s+|(?:But|And|Still|Later|Now|Then)\s+)?"
                      rf"(?P<run>{_RUN.pattern})\s+(?:(?:also|still|later|then|now|even|again|never|often|has|had|was|is)\s+)*"
                      rf"(?:[a-z]+ed|is|was|has|had|{_VERB})\b")
_MIDCAP = re.compile(rf"(?<=[\w,;)]) ([{_UP}][\w’'\-]*)")
_SENT_END = re.compile(rf"[.!?…]+[\"'”’)\]]*\s+(?=[\"'“‘(\[]?[{_UP}0-9])|\n+")
_LAST_WORD = re.compile(r"(?<![^\s.])([\w.]+)$")
_AFTER = re.compile(rf"[,.]?\s+(?:(?P<v1>{_VERB})\s+(?P<w1>[^,;:!?()\"“”‘\n—–]+)"
                    rf"|according to\s+(?P<w3>[^,;:!?()\"“”\n—–]+)"
                    rf"|(?P<w2>[^,;:!?\"“”\n]{{1,60}}?)(?:,[^\"“”\n]{{1,100}}?,)?"
                    rf"\s+(?:(?:also|then|later|again|has|had)\s+)?(?P<v2>{_VERB})\b)")
_BEFORE = re.compile(rf"(?:\b[Aa]ccording to\s+(?P<w3>[^,;:\"“”]{{1,60}}),"
                     rf"|\b(?P<v>{_VERB})(?:\s+that|\s+the|\s*[,:]|\s+[^\"“”,.;:]{{1,40}}:)?)\s*$")
_CUT = re.compile(r"\s+(?:in|on|at|during|after|before|while|when|who|as|from|to|with|about|last|this|told)"
                  r"\b.*")
_TRAIL = re.compile(rf",\s+(?P<who>[^,;:\"“”]{{1,60}}?)\s+(?:also\s+)?(?P<v>{_VERB})"
                    rf"(?:\s+(?:on|in|at|during|last|this|earlier)\b[^,;:\"“”]{{0,40}})?[.!]?\s*$")
_THAT = re.compile(r"\s+(?:that\s+|(?P<pre>(?:[\w’',-]+\s+){1,10}?)that\s+)")
