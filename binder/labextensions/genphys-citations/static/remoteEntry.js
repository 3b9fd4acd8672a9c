/*
 * genphys-citations: citations read as author-year text in JupyterLab (Binder).
 *
 * jupyterlab-myst 2.6.0 parses {cite}`key` but loads no bibliography: every citation is
 * rendered as the bare key with a warning icon (an InlineError span titled "Citation Not
 * Found", from its addCiteChildrenTransform and myst-to-react's Cite renderer). This plugin
 * reads the book's references.bib through the Contents API and rewrites those spans the way
 * the HTML book (sphinxcontrib-bibtex, author_year style) writes them:
 *
 *   {cite}`key`          -> [Hinton, 2002]
 *   {cite}`key1,key2`    -> [Hinton, 2002; Welling and Teh, 2011]
 *   {cite:t}`key`        -> Hinton [2002]
 *
 * The MyST parser turns {cite} with one key into a lone cite node, {cite} with several keys
 * into a "narrative" cite group and {cite:t} into a "narrative" group too; a narrative group of
 * one is therefore {cite:t}, one of several is {cite} (tests/test_binder.py checks that the
 * book has no {cite:t} with several keys). A key missing from references.bib keeps the
 * warning.
 *
 * A prebuilt JupyterLab 4 federated extension written by hand: no build step and no shared
 * packages (it imports nothing); binder/postBuild copies this folder into the user's
 * labextensions directory.
 */
(function () {
  'use strict';

  const NAME = 'genphys-citations';
  const BIB_PATH = 'references.bib';
  const MISSING = 'span[title="Citation Not Found"]';

  // ------------------------------------------------------------------------------------------
  // BibTeX: entries, fields, names, LaTeX accents
  // ------------------------------------------------------------------------------------------

  const ACCENTS = {
    "'": '\u0301', '`': '\u0300', '^': '\u0302', '"': '\u0308', '~': '\u0303', '=': '\u0304',
    '.': '\u0307', u: '\u0306', v: '\u030C', H: '\u030B', c: '\u0327', k: '\u0328', r: '\u030A'
  };
  const SYMBOLS = {
    ss: '\u00DF', o: '\u00F8', O: '\u00D8', ae: '\u00E6', AE: '\u00C6', oe: '\u0153',
    OE: '\u0152', aa: '\u00E5', AA: '\u00C5', l: '\u0142', L: '\u0141', i: '\u0131', j: '\u0237'
  };

  /** Plain text of a BibTeX value: accents composed, commands and braces removed. */
  function latexToText(value) {
    let s = value;
    s = s.replace(/\\(ss|ae|AE|oe|OE|aa|AA|o|O|l|L|i|j)(?![A-Za-z])\s*/g, (m, name) => SYMBOLS[name]);
    s = s.replace(
      /\\([`'^"~=.])\s*(?:\{\s*([A-Za-z\u0131\u0237])\s*\}|([A-Za-z\u0131\u0237]))/g,
      (m, accent, a, b) => (a || b) + ACCENTS[accent]
    );
    s = s.replace(
      /\\([uvHckr])(?:\s*\{\s*([A-Za-z])\s*\}|\s+([A-Za-z]))/g,
      (m, accent, a, b) => (a || b) + ACCENTS[accent]
    );
    s = s.replace(/\\([&%$#_{}])/g, '$1');
    s = s.replace(/\\[A-Za-z]+\s*/g, ''); // other commands (\url, \emph, ...): keep the argument
    s = s.replace(/---/g, '\u2014').replace(/--/g, '\u2013').replace(/~/g, '\u00A0');
    s = s.replace(/[{}]/g, '').replace(/\s+/g, ' ').trim();
    return s.normalize('NFC');
  }

  /** Index of the brace that closes the one at `start`. */
  function closingBrace(text, start) {
    let depth = 0;
    for (let k = start; k < text.length; k++) {
      if (text[k] === '\\') {
        k++;
      } else if (text[k] === '{') {
        depth++;
      } else if (text[k] === '}') {
        depth--;
        if (depth === 0) {
          return k;
        }
      }
    }
    throw new Error(`${NAME}: unbalanced braces in ${BIB_PATH} at character ${start}`);
  }

  /** Index of the quote that closes the one at `start` (quotes inside braces do not count). */
  function closingQuote(text, start) {
    let depth = 0;
    for (let k = start + 1; k < text.length; k++) {
      if (text[k] === '\\') {
        k++;
      } else if (text[k] === '{') {
        depth++;
      } else if (text[k] === '}') {
        depth--;
      } else if (text[k] === '"' && depth === 0) {
        return k;
      }
    }
    throw new Error(`${NAME}: unterminated quote in ${BIB_PATH} at character ${start}`);
  }

  /** Entries of a .bib file: {lowercased key: {key, type, fields: {name: raw value}}}. */
  function parseBib(text) {
    const entries = {};
    const strings = {};
    let i = 0;
    while ((i = text.indexOf('@', i)) !== -1) {
      const head = /^@\s*([A-Za-z]+)\s*([{(])/.exec(text.slice(i));
      if (!head) {
        i++;
        continue;
      }
      const type = head[1].toLowerCase();
      let j = i + head[0].length;
      if (type === 'comment' || type === 'preamble') {
        i = head[2] === '{' ? closingBrace(text, j - 1) + 1 : text.indexOf(')', j) + 1;
        continue;
      }
      let key = null;
      if (type !== 'string') {
        const comma = text.indexOf(',', j);
        key = text.slice(j, comma).trim();
        j = comma + 1;
      }
      const fields = {};
      for (;;) {
        while (j < text.length && /[\s,]/.test(text[j])) {
          j++;
        }
        if (j >= text.length || text[j] === '}' || text[j] === ')') {
          j++;
          break;
        }
        const field = /^([A-Za-z][\w:.+-]*)\s*=\s*/.exec(text.slice(j));
        if (!field) {
          throw new Error(`${NAME}: cannot read the field at character ${j} of ${BIB_PATH}`);
        }
        j += field[0].length;
        let value = '';
        for (;;) {
          if (text[j] === '{') {
            const end = closingBrace(text, j);
            value += text.slice(j + 1, end);
            j = end + 1;
          } else if (text[j] === '"') {
            const end = closingQuote(text, j);
            value += text.slice(j + 1, end);
            j = end + 1;
          } else {
            const bare = /^[^\s,#})]+/.exec(text.slice(j));
            const word = bare ? bare[0] : '';
            value += Object.prototype.hasOwnProperty.call(strings, word.toLowerCase())
              ? strings[word.toLowerCase()]
              : word;
            j += word.length;
          }
          while (/\s/.test(text[j] || '')) {
            j++;
          }
          if (text[j] !== '#') {
            break;
          }
          j++;
          while (/\s/.test(text[j] || '')) {
            j++;
          }
        }
        fields[field[1].toLowerCase()] = value;
      }
      if (type === 'string') {
        Object.assign(strings, fields);
      } else {
        entries[key.toLowerCase()] = { key: key, type: type, fields: fields };
      }
      i = j;
    }
    return entries;
  }

  /** `text` split at `separator` (a regular expression) outside braces. */
  function splitOutsideBraces(text, separator) {
    const parts = [];
    let depth = 0;
    let start = 0;
    for (let k = 0; k < text.length; k++) {
      if (text[k] === '{') {
        depth++;
      } else if (text[k] === '}') {
        depth--;
      } else if (depth === 0) {
        const match = separator.exec(text.slice(k));
        if (match && match.index === 0) {
          parts.push(text.slice(start, k));
          k += match[0].length - 1;
          start = k + 1;
        }
      }
    }
    parts.push(text.slice(start));
    return parts.map(p => p.trim()).filter(p => p.length > 0);
  }

  /** The surname BibTeX reads from a name: "von Last, First" or "First von Last". */
  function surname(name) {
    const parts = splitOutsideBraces(name, /,/);
    if (parts.length > 1) {
      return latexToText(parts[0]);
    }
    const words = splitOutsideBraces(name, /\s+/);
    let k = words.length - 1;
    while (k > 1 && /^[a-z]/.test(words[k - 1])) {
      k--; // a lowercase "von" part belongs to the surname
    }
    return latexToText(words.slice(k).join(' '));
  }

  /** "Hinton", "Welling and Teh" or "Goodfellow et al.", as sphinxcontrib-bibtex writes them. */
  function authorsText(entry) {
    const raw = entry.fields.author || entry.fields.editor || entry.fields.organization;
    if (!raw) {
      return entry.key;
    }
    const names = splitOutsideBraces(raw, /\s+and\s+/i);
    const others = names.length > 1 && names[names.length - 1].toLowerCase() === 'others';
    const surnames = names.filter(n => n.toLowerCase() !== 'others').map(surname);
    if (surnames.length >= 3 || others) {
      return `${surnames[0]} et al.`;
    }
    return surnames.join(' and ');
  }

  function yearText(entry) {
    return entry.fields.year ? latexToText(entry.fields.year) : 'n.d.';
  }

  /** The parts of a citation: {author, year, title} as plain text. */
  function citation(bib, key) {
    const entry = bib[String(key).trim().toLowerCase()];
    if (!entry) {
      return null;
    }
    return {
      author: authorsText(entry),
      year: yearText(entry),
      title: entry.fields.title ? latexToText(entry.fields.title) : ''
    };
  }

  // ------------------------------------------------------------------------------------------
  // The rendered notebook: rewrite jupyterlab-myst's "Citation Not Found" spans
  // ------------------------------------------------------------------------------------------

  const STYLE = `
span.genphys-cite.text-yellow-600 { color: inherit; }
span.genphys-cite > svg { display: none; }
span.cite-group.genphys-cite-p::before { content: "["; }
span.cite-group.genphys-cite-p::after { content: "]"; }
span.cite-group.genphys-cite-p > :after { content: ";\\00a0"; }
span.cite-group.genphys-cite-p > :last-of-type:after { content: ""; }
`;

  /** How a cite span is written: 'alone' ([A, Y]), 'in-brackets' (A, Y) or 'narrative' (A [Y]). */
  function citeForm(span) {
    const group = span.parentElement;
    if (!group || !group.matches('span.cite-group')) {
      return { form: 'alone', group: null };
    }
    const members = group.querySelectorAll(':scope > span').length;
    if (group.classList.contains('parenthetical') || members > 1) {
      return { form: 'in-brackets', group: group };
    }
    return { form: 'narrative', group: group };
  }

  function rewrite(span, bib) {
    const text = Array.from(span.childNodes).find(n => n.nodeType === Node.TEXT_NODE);
    if (!text || span.dataset.genphysText === text.nodeValue) {
      return; // done already (React keeps the text while the label is unchanged)
    }
    const key = text.nodeValue.trim();
    const cite = citation(bib, key);
    if (!cite) {
      return; // not in references.bib: keep jupyterlab-myst's warning
    }
    const { form, group } = citeForm(span);
    let written;
    if (form === 'alone') {
      written = `[${cite.author}, ${cite.year}]`;
    } else if (form === 'in-brackets') {
      written = `${cite.author}, ${cite.year}`;
      group.classList.add('genphys-cite-p');
    } else {
      written = `${cite.author} [${cite.year}]`;
    }
    text.nodeValue = written;
    span.dataset.genphysText = written;
    span.dataset.citeKey = key;
    span.classList.add('genphys-cite');
    span.title = `${cite.author} (${cite.year}). ${cite.title}`;
  }

  const state = { bib: null, scheduled: false };

  function rewriteAll() {
    state.scheduled = false;
    if (!state.bib) {
      return;
    }
    document.querySelectorAll(MISSING).forEach(span => rewrite(span, state.bib));
  }

  function schedule() {
    if (!state.scheduled) {
      state.scheduled = true;
      setTimeout(rewriteAll, 30); // once per burst of React updates
    }
  }

  const plugin = {
    id: `${NAME}:plugin`,
    description: 'Citations as author-year text, from references.bib.',
    autoStart: true,
    activate: app => {
      const style = document.createElement('style');
      style.id = `${NAME}-style`;
      style.textContent = STYLE;
      document.head.appendChild(style);
      const ready = app.serviceManager.contents
        .get(BIB_PATH, { content: true, type: 'file', format: 'text' })
        .then(model => {
          state.bib = parseBib(model.content);
          new MutationObserver(schedule).observe(document.body, {
            childList: true,
            subtree: true,
            characterData: true
          });
          schedule();
          return Object.keys(state.bib).length;
        })
        .catch(error => {
          console.warn(`${NAME}: citations stay as keys: cannot read ${BIB_PATH}: ${error}`);
          return 0;
        });
      // for tests/test_binder.py
      window.genphysCitations = {
        ready: ready,
        keys: () => Object.keys(state.bib || {}),
        citation: key => citation(state.bib || {}, key)
      };
    }
  };

  // The module-federation container JupyterLab loads (bootstrap.js: init, then get).
  const extension = { __esModule: true, default: plugin };
  window._JUPYTERLAB = window._JUPYTERLAB || {};
  window._JUPYTERLAB[NAME] = {
    init: () => Promise.resolve(),
    get: request =>
      request === './extension'
        ? Promise.resolve(() => extension)
        : Promise.reject(new Error(`${NAME} has no module ${request}`))
  };
})();
