// The browser side of mnist_cnn.canvas.DrawDigit (an anywidget ES module).
//
// Draw with a mouse, pen or finger (pointer events). At the end of each
// stroke the canvas's ink, one byte per pixel, goes to the kernel as the
// widget's `drawing`; the kernel answers with `probabilities`, `prediction`,
// `digit_png`, `maps_png` and `message`, drawn here. No kernel.execute:
// everything travels as widget state.

function element(tag, className, parent) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (parent) parent.appendChild(node);
  return node;
}

function render({ model, el }) {
  const root = element('div', 'draw-digit', el);

  const left = element('div', 'draw-digit-left', root);
  const canvas = element('canvas', 'draw-digit-canvas', left);
  const size = model.get('size');
  canvas.width = size;
  canvas.height = size;
  canvas.setAttribute('aria-label', 'Draw a digit here');
  const controls = element('div', 'draw-digit-controls', left);
  const clear = element('button', 'draw-digit-clear', controls);
  clear.type = 'button';
  clear.textContent = 'Clear';
  const seen = element('img', 'draw-digit-seen', controls);
  seen.alt = 'The digit as the network sees it (28x28)';
  seen.title = seen.alt;

  const right = element('div', 'draw-digit-right', root);
  const prediction = element('div', 'draw-digit-prediction', right);
  const message = element('div', 'draw-digit-message', right);
  const bars = element('div', 'draw-digit-bars', right);
  const rows = [];
  for (let digit = 0; digit < 10; digit++) {
    const row = element('div', 'draw-digit-row', bars);
    element('span', 'draw-digit-label', row).textContent = String(digit);
    const track = element('span', 'draw-digit-track', row);
    const bar = element('span', 'draw-digit-bar', track);
    bar.dataset.digit = String(digit);
    const value = element('span', 'draw-digit-value', row);
    rows.push({ row, bar, value });
  }
  const maps = element('figure', 'draw-digit-maps', right);
  const mapsImage = element('img', 'draw-digit-maps-image', maps);
  mapsImage.alt = "conv1's 32 feature maps";
  element('figcaption', '', maps).textContent =
      "conv1's 32 feature maps: rows 1-2 before bias + ReLU, rows 3-4 after.";

  const context = canvas.getContext('2d', { willReadFrequently: true });
  context.lineCap = 'round';
  context.lineJoin = 'round';
  context.strokeStyle = '#000';
  context.lineWidth = size / 14;  // MNIST's strokes: ~2 of 28 pixels.
  let last = null;

  function point(event) {
    const box = canvas.getBoundingClientRect();
    return [(event.clientX - box.left) * canvas.width / box.width,
            (event.clientY - box.top) * canvas.height / box.height];
  }

  function lineTo(event) {
    const [x, y] = point(event);
    context.beginPath();
    context.moveTo(last[0], last[1]);
    context.lineTo(x, y);
    context.stroke();
    last = [x, y];
  }

  function send() {
    // The ink is the alpha channel: strokes are opaque on a clear canvas.
    const rgba = context.getImageData(0, 0, canvas.width, canvas.height).data;
    const ink = new Uint8Array(canvas.width * canvas.height);
    for (let i = 0; i < ink.length; i++) ink[i] = rgba[4 * i + 3];
    model.set('drawing', new DataView(ink.buffer));
    model.save_changes();
  }

  function down(event) {
    if (event.button !== undefined && event.button > 0) return;
    event.preventDefault();
    canvas.setPointerCapture(event.pointerId);
    last = point(event);
    lineTo(event);  // A dot for a tap.
  }

  function move(event) {
    if (last === null) return;
    event.preventDefault();
    const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
    for (const each of (events.length ? events : [event])) lineTo(each);
  }

  function up(event) {
    if (last === null) return;
    last = null;
    if (canvas.hasPointerCapture(event.pointerId)) {
      canvas.releasePointerCapture(event.pointerId);
    }
    send();
  }

  function wipe() {
    context.clearRect(0, 0, canvas.width, canvas.height);
  }

  function onClear() {
    wipe();
    model.set('drawing', new DataView(new ArrayBuffer(0)));
    model.save_changes();
  }

  function onDrawing() {
    const drawing = model.get('drawing');
    if (!drawing || drawing.byteLength === 0) wipe();
  }

  function update() {
    const probabilities = model.get('probabilities') || [];
    const best = model.get('prediction');
    prediction.textContent = best >= 0 ? 'Prediction: ' + best : '';
    message.textContent = model.get('message') || '';
    message.hidden = !message.textContent;
    rows.forEach(({ row, bar, value }, digit) => {
      const p = probabilities.length === 10 ? probabilities[digit] : 0;
      bar.style.width = (100 * Math.max(0, Math.min(1, p))).toFixed(1) + '%';
      bar.dataset.p = String(p);
      value.textContent = probabilities.length === 10 ? p.toFixed(3) : '';
      row.classList.toggle('draw-digit-best', digit === best);
    });
    const mapsUrl = model.get('maps_png');
    maps.hidden = !mapsUrl;
    if (mapsUrl) mapsImage.src = mapsUrl;
    const seenUrl = model.get('digit_png');
    seen.hidden = !seenUrl;
    if (seenUrl) seen.src = seenUrl;
  }

  canvas.addEventListener('pointerdown', down);
  canvas.addEventListener('pointermove', move);
  canvas.addEventListener('pointerup', up);
  canvas.addEventListener('pointercancel', up);
  clear.addEventListener('click', onClear);
  const traits = ['probabilities', 'prediction', 'message', 'maps_png',
                  'digit_png'];
  for (const name of traits) model.on('change:' + name, update);
  model.on('change:drawing', onDrawing);
  update();

  return () => {
    for (const name of traits) model.off('change:' + name, update);
    model.off('change:drawing', onDrawing);
  };
}

export default { render };
