// django-celery-beat's periodic task form: the chosen crontab in words, under
// the crontab field. The package does this in an inline script, which the
// Content-Security-Policy blocks; the readings come in a json_script block.
(function () {
  "use strict";
  const readingsScript = document.getElementById("readable-crontabs");
  const select = document.getElementById("id_crontab");
  const help = document.querySelector(".field-crontab .help");
  // The read-only "crontab translation" row repeats what the help shows.
  const translationRow = document.querySelector(".field-crontab_translation");
  if (translationRow) translationRow.style.display = "none";
  if (!readingsScript || !select || !help) return;
  const readings = JSON.parse(readingsScript.textContent);
  const reading = document.createElement("div");
  reading.className = "crontab-reading";
  help.appendChild(reading);
  function show() {
    const text = readings[select.value];
    reading.textContent = text ? "Translation: " + text : "";
  }
  select.addEventListener("change", show);
  show();
})();
