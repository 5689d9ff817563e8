"""The sentence templates: one intent each, written natively in every language (mostly data).

A template's text for a language is a format string whose fields name a slot and, after a colon, the grammatical
use of the slot's value ("{room:in}" is "in the kitchen" in the language at hand: "in der küche", "dans la
cuisine", "nella cucina"; see `values` and `morphology.inflect`). Where the words depend on the values (a verb
agreeing with a number, a participle with a gender), the text is a function of the slot values that returns the
format string. Templates sharing an intent form a family; whole families are held out as the unseen test split.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache

from . import lexicon as lx
from .morphology import finish
from .text import LANGUAGES, normalize
from .values import Value

Text = str | Callable[[Mapping[str, Value]], str]
Check = Callable[[Mapping[str, Value]], bool]


class _Slot:
    """A slot value bound to a language, so that "{room:in}" formats as value.form(lang, "in")."""

    __slots__ = ("lang", "value")

    def __init__(self, lang: str, value: Value) -> None:
        self.lang = lang
        self.value = value

    def __format__(self, how: str) -> str:
        return self.value.form(self.lang, how)


class _Slots:
    __slots__ = ("lang", "values")

    def __init__(self, lang: str, values: Mapping[str, Value]) -> None:
        self.lang = lang
        self.values = values

    def __getitem__(self, name: str) -> _Slot:
        return _Slot(self.lang, self.values[name])


@dataclass(frozen=True, eq=False)
class Template:
    """One way of saying one intent, in every language.

    name: unique template name. family: the intent shared with sibling templates. domain: the topic area.
    slots: slot name -> the values it can take. text: language -> format string (or function of the values
    returning one). check: optional constraint on a combination of values (e.g. two different cities).
    """

    name: str
    family: str
    domain: str
    slots: Mapping[str, Sequence[Value]]
    text: Mapping[str, Text]
    check: Check | None = None

    def render(self, lang: str, values: Mapping[str, Value]) -> str:
        """The sentence in `lang` for these slot values, in the grammar's normalized written form."""
        fmt = self.text[lang]
        if callable(fmt):
            fmt = fmt(values)
        return normalize(finish(lang, fmt.format_map(_Slots(lang, values))))


def _t(name: str, family: str, domain: str, slots: Mapping[str, Sequence[Value]], *, en: Text, de: Text, es: Text,
       fr: Text, it: Text, zh: Text, check: Check | None = None) -> Template:  # fmt: skip
    """A template from its text in each language, given by keyword."""
    return Template(name, family, domain, slots, dict(zip(LANGUAGES, (en, de, es, fr, it, zh), strict=True)), check)


def _different(a: str, b: str) -> Check:
    return lambda v: v[a].key != v[b].key


def _feminine(lang: str, slot: str) -> Check:
    return lambda v: v[slot].gender(lang) == "f"


def _agree(test: Check, yes: str, no: str) -> Callable[[Mapping[str, Value]], str]:
    """A text that is `yes` when `test(values)` holds, else `no`."""
    return lambda v: yes if test(v) else no


def _singular(lang: str, slot: str) -> Check:
    return lambda v: v[slot].singular(lang)


def _smart_home() -> list[Template]:
    d = "smart_home"
    room_device = {"device": lx.DEVICES, "room": lx.ROOMS}
    return [
        _t("device_power_on", "device_power", d, room_device,
           en="turn on the {device} {room:in}", de="schalte {device:acc} {room:in} ein",
           es="enciende {device:def} {room:of}", fr="allume {device:def} {room:of}",
           it="accendi {device:def} {room:of}", zh="打开 {room} 的 {device}"),
        _t("device_power_off", "device_power", d, room_device,
           en="turn off the {device} {room:in}", de="schalte {device:acc} {room:in} aus",
           es="apaga {device:def} {room:of}", fr="éteins {device:def} {room:of}",
           it="spegni {device:def} {room:of}", zh="关掉 {room} 的 {device}"),
        _t("device_power_off_later", "device_power", d, {**room_device, "delay": lx.DELAYS},
           en="turn off the {device} {room:in} {delay}", de="schalte {device:acc} {room:in} {delay} aus",
           es="apaga {device:def} {room:of} {delay}", fr="éteins {device:def} {room:of} {delay}",
           it="spegni {device:def} {room:of} {delay}", zh="{delay} 关掉 {room} 的 {device}"),
        _t("thermostat_set", "thermostat", d, {"room": lx.INDOOR_ROOMS, "temp": lx.ROOM_TEMPERATURES},
           en="set the temperature {room:in} to {temp}", de="stell die temperatur {room:in} auf {temp}",
           es="pon la temperatura {room:of} a {temp}", fr="règle la température {room:of} à {temp}",
           it="imposta la temperatura {room:of} a {temp}", zh="把 {room} 的 温度 调 到 {temp}"),
        _t("thermostat_query", "thermostat", d, {"room": lx.INDOOR_ROOMS},
           en="what's the temperature {room:in}", de="wie hoch ist die temperatur {room:in}",
           es="qué temperatura hay {room:in}", fr="quelle est la température {room:in}",
           it="che temperatura c'è {room:in}", zh="{room} 的 温度 是 多少"),
        _t("thermostat_answer", "thermostat", d, {"room": lx.INDOOR_ROOMS, "temp": lx.ROOM_TEMPERATURES},
           en="it's {temp} {room:in}", de="{room:in} sind es {temp}", es="{room:in} hay {temp}",
           fr="il fait {temp} {room:in}", it="{room:in} ci sono {temp}", zh="{room} 现在 {temp}"),
        _t("light_dim", "lights", d, {"room": lx.ROOMS, "level": lx.PERCENTAGES},
           en="dim the lights {room:in} to {level}", de="dimme das licht {room:in} auf {level}",
           es="baja la luz {room:of} {level:at}", fr="baisse la lumière {room:of} à {level}",
           it="abbassa la luce {room:of} {level:at}", zh="把 {room} 的 灯 调 到 {level}"),
        _t("light_color", "lights", d, {"room": lx.ROOMS, "color": lx.COLORS},
           en="change the light {room:in} to {color}", de="stell das licht {room:in} auf {color}",
           es="cambia la luz {room:of} a {color}", fr="mets la lumière {room:of} en {color}",
           it="imposta la luce {room:of} {color:on}", zh="把 {room} 的 灯 调 成 {color}"),
        _t("door_lock", "door_lock", d, {"door": lx.DOORS},
           en="lock the {door}", de="schließ {door:acc} ab", es="cierra con llave {door:def}",
           fr="verrouille {door:def}", it="chiudi a chiave {door:def}", zh="锁上 {door}"),
        _t("door_lock_later", "door_lock", d, {"door": lx.DOORS, "when": lx.DAY_AT + lx.DELAYS},
           en="lock the {door} {when}", de="schließ {door:acc} {when} ab", es="cierra con llave {door:def} {when}",
           fr="verrouille {door:def} {when}", it="chiudi a chiave {door:def} {when}", zh="{when} 锁上 {door}"),
        _t("door_locked_query", "door_lock", d, {"door": lx.DOORS},
           en="is the {door} locked", de="ist {door:nom} abgeschlossen", es="está cerrada con llave {door:def}",
           fr="est-ce que {door:def} est verrouillée", it="{door:def} è chiusa a chiave", zh="{door} 锁 了 吗"),
        _t("music_play", "music", d, {"genre": lx.GENRES, "room": lx.ROOMS},
           en="play {genre} {room:in}", de="spiel {genre} {room:in}", es="pon {genre} {room:in}",
           fr="mets {genre} {room:in}", it="metti {genre} {room:in}", zh="在 {room} 播放 {genre}"),
        _t("music_volume", "music", d, {"room": lx.ROOMS, "level": lx.LEVELS},
           en="set the volume {room:in} to {level}", de="stell die lautstärke {room:in} auf {level}",
           es="pon el volumen {room:in} a {level}", fr="mets le volume {room:in} à {level}",
           it="imposta il volume {room:in} a {level}", zh="把 {room} 的 音量 调 到 {level}"),
        _t("oven_preheat", "oven", d, {"temp": lx.OVEN_TEMPERATURES},
           en="preheat the oven to {temp}", de="heiz den backofen auf {temp} vor",
           es="precalienta el horno a {temp}", fr="préchauffe le four à {temp}",
           it="preriscalda il forno a {temp}", zh="把 烤箱 预热 到 {temp}"),
        _t("oven_off_later", "oven", d, {"delay": lx.DELAYS},
           en="turn off the oven {delay}", de="schalte den backofen {delay} aus", es="apaga el horno {delay}",
           fr="éteins le four {delay}", it="spegni il forno {delay}", zh="{delay} 关掉 烤箱"),
        _t("appliance_start", "appliance", d, {"appliance": lx.APPLIANCES, "time": lx.DAY_TIMES},
           en="start the {appliance} {time:at}", de="starte {appliance:acc} {time:at}",
           es="pon en marcha {appliance:def} {time:at}", fr="lance {appliance:def} {time:at}",
           it="avvia {appliance:def} {time:at}", zh="{time:at} 启动 {appliance}"),
        _t("appliance_done", "appliance", d, {"appliance": lx.APPLIANCES, "delay": lx.DELAYS},
           en="the {appliance} will be done {delay}", de="{appliance:nom} ist {delay} fertig",
           es="{appliance:def} terminará {delay}", fr="{appliance:def} aura fini {delay}",
           it="{appliance:def} finirà {delay}", zh="{appliance} {delay} 就 好 了"),
        _t("blinds_open", "blinds", d, {"room": lx.INDOOR_ROOMS},
           en="open the blinds {room:in}", de="mach die rollläden {room:in} auf",
           es="sube las persianas {room:of}", fr="ouvre les volets {room:of}",
           it="alza le tapparelle {room:of}", zh="打开 {room} 的 百叶窗"),
        _t("blinds_close", "blinds", d, {"room": lx.INDOOR_ROOMS},
           en="close the blinds {room:in}", de="mach die rollläden {room:in} zu",
           es="baja las persianas {room:of}", fr="ferme les volets {room:of}",
           it="abbassa le tapparelle {room:of}", zh="关上 {room} 的 百叶窗"),
        _t("blinds_close_at", "blinds", d, {"room": lx.INDOOR_ROOMS, "time": lx.DAY_TIMES},
           en="close the blinds {room:in} {time:at}", de="mach die rollläden {room:in} {time:at} zu",
           es="baja las persianas {room:of} {time:at}", fr="ferme les volets {room:of} {time:at}",
           it="abbassa le tapparelle {room:of} {time:at}", zh="{time:at} 关上 {room} 的 百叶窗"),
        _t("vacuum_room", "cleaning", d, {"room": lx.INDOOR_ROOMS, "day": lx.DAYS_WITH_TODAY},
           en="vacuum {room:the} {day}", de="saug {day} {room:acc}", es="aspira {room:def} {day}",
           fr="passe l'aspirateur {room:in} {day}", it="passa l'aspirapolvere {room:in} {day}",
           zh="{day} 用 吸尘器 打扫 {room}"),
        _t("robot_to_room", "cleaning", d, {"room": lx.INDOOR_ROOMS},
           en="send the robot vacuum to {room:the}", de="schick den saugroboter {room:into}",
           es="manda el robot aspirador {room:to}", fr="envoie l'aspirateur robot {room:in}",
           it="manda il robot aspirapolvere {room:in}", zh="让 扫地 机器人 去 {room}"),
        _t("battery_query", "battery", d, {"gadget": lx.GADGETS},
           en="how much battery does my {gadget} have left", de="wie viel akku hat {gadget:my_nom} noch",
           es="cuánta batería le queda a {gadget:my}", fr="combien de batterie reste-t-il à {gadget:my}",
           it="quanta batteria ha ancora {gadget:my}", zh="我 的 {gadget} 还 剩 多少 电"),
        _t("battery_answer", "battery", d, {"gadget": lx.GADGETS, "level": lx.PERCENTAGES},
           en="your {gadget} has {level} battery left", de="{gadget:your_nom} hat noch {level} akku",
           es="a {gadget:your} le queda {level:a} de batería", fr="il reste {level} de batterie à {gadget:your}",
           it="{gadget:your} ha ancora {level:def} di batteria", zh="你 的 {gadget} 还 剩 {level} 的 电"),
    ]  # fmt: skip


def _timers() -> list[Template]:
    d = "timers"
    return [
        _t("timer_set", "timer_set", d, {"length": lx.DURATIONS},
           en="set a timer for {length}", de="stell einen timer auf {length}", es="pon un temporizador de {length}",
           fr="mets un minuteur de {length}", it="imposta un timer di {length}", zh="设置 {length} 的 计时器"),
        _t("timer_set_label", "timer_set", d, {"label": lx.TIMER_LABELS, "length": lx.DURATIONS},
           en="set a timer for {length} for {label:the}", de="stell einen timer für {label:acc} auf {length}",
           es="pon un temporizador de {length} para {label:def}", fr="mets un minuteur de {length} pour {label:def}",
           it="imposta un timer di {length} per {label:def}", zh="给 {label} 设置 {length} 的 计时器"),
        _t("timer_left_query", "timer_query", d, {"label": lx.TIMER_LABELS},
           en="how much time is left on the timer for {label:the}",
           de="wie lange läuft der timer für {label:acc} noch",
           es="cuánto tiempo le queda al temporizador {label:of}",
           fr="combien de temps reste-t-il sur le minuteur {label:of}", it="quanto manca al timer {label:of}",
           zh="{label} 的 计时器 还 剩 多少 时间"),
        _t("timer_left_answer", "timer_query", d, {"label": lx.TIMER_LABELS, "left": lx.SHORT_DURATIONS},
           en=_agree(_singular("en", "left"), "there is {left} left on the timer for {label:the}",
                     "there are {left} left on the timer for {label:the}"),
           de="der timer für {label:acc} läuft noch {left}",
           es=_agree(_singular("es", "left"), "al temporizador {label:of} le queda {left}",
                     "al temporizador {label:of} le quedan {left}"),
           fr="il reste {left} sur le minuteur {label:of}",
           it=_agree(_singular("it", "left"), "manca {left} al timer {label:of}",
                     "mancano {left} al timer {label:of}"),
           zh="{label} 的 计时器 还 剩 {left}"),
        _t("alarm_set_time", "alarm_set", d, {"time": lx.ALARM_TIMES},
           en="set an alarm for {time}", de="stell einen wecker auf {time}", es="pon una alarma {time:at}",
           fr="mets une alarme {time:at}", it="imposta una sveglia {time:at}", zh="设置 一 个 {time} 的 闹钟"),
        _t("alarm_wake_me", "alarm_set", d, {"time": lx.WAKE_TIMES, "day": lx.DATED_DAYS},
           en="wake me up {time:at} {day}", de="weck mich {day} {time:at}", es="despiértame {day} {time:at}",
           fr="réveille-moi {day} {time:at}", it="svegliami {day} {time:at}", zh="{day} {time} 叫醒 我"),
        _t("alarm_cancel", "alarm_manage", d, {"time": lx.ALARM_TIMES},
           en="cancel my alarm for {time}", de="lösch meinen wecker für {time}", es="cancela mi alarma {time:of}",
           fr="annule mon alarme {time:of}", it="cancella la mia sveglia {time:of}", zh="取消 我 {time} 的 闹钟"),
        _t("alarm_query", "alarm_manage", d, {"day": lx.DATED_DAYS},
           en="what time does my alarm go off {day}", de="wann klingelt mein wecker {day}",
           es="a qué hora suena mi alarma {day}", fr="à quelle heure sonne mon alarme {day}",
           it="a che ora suona la mia sveglia {day}", zh="我 {day} 的 闹钟 是 几 点"),
        _t("remind_task", "reminder", d, {"task": lx.TASKS, "when": lx.WHEN},
           en="remind me to {task} {when}", de="erinnere mich {when} daran dass ich {task} muss",
           es="recuérdame {task} {when}", fr="rappelle-moi de {task} {when}", it="ricordami di {task} {when}",
           zh="{when} 提醒 我 {task}"),
        _t("remind_dont_forget", "reminder", d, {"task": lx.TASKS},
           en="don't let me forget to {task}", de="lass mich nicht vergessen {task:zu}",
           es="no me dejes olvidar {task}", fr="ne me laisse pas oublier de {task}",
           it="non farmi dimenticare di {task}", zh="别 让 我 忘了 {task}"),
        _t("remind_confirm", "reminder", d, {"task": lx.TASKS, "when": lx.WHEN},
           en="okay i'll remind you to {task} {when}", de="okay ich erinnere dich {when} daran {task:zu}",
           es="vale te recordaré {task} {when}", fr="d'accord je te rappellerai de {task} {when}",
           it="va bene ti ricorderò di {task} {when}", zh="好的 我 会 {when} 提醒 你 {task}"),
    ]  # fmt: skip


def _calendar() -> list[Template]:
    d = "calendar"
    meeting = {"event": lx.EVENTS, "name": lx.NAMES, "day": lx.DATED_DAYS, "time": lx.DAY_TIMES}
    return [
        _t("event_add_weekday", "calendar_add", d, meeting,
           en="add {event:a} with {name} {day} {time:at}", de="trag {event:a_acc} mit {name} {day} {time:at} ein",
           es="añade {event:a} con {name} {day} {time:at}", fr="ajoute {event:a} avec {name} {day} {time:at}",
           it="aggiungi {event:a} con {name} {day} {time:at}", zh="添加 {day} {time} 和 {name} 的 {event}"),
        _t("event_add_date", "calendar_add", d, {"event": lx.EVENTS, "date": lx.DATES},
           en="schedule {event:a} for {date}", de="trag {event:a_acc} {date:on} ein",
           es="programa {event:a} para {date}", fr="planifie {event:a} pour {date}",
           it="programma {event:a} per {date}", zh="把 {date} 的 {event} 加 到 日历 上"),
        _t("agenda_query", "calendar_query", d, {"day": lx.DAYS_WITH_TODAY},
           en="what's on my calendar {day}", de="was steht {day} in meinem kalender",
           es="qué tengo en mi agenda {day}", fr="qu'est-ce que j'ai dans mon agenda {day}",
           it="cosa ho in agenda {day}", zh="我 {day} 有 什么 安排"),
        _t("event_when_query", "calendar_query", d, {"event": lx.EVENTS, "name": lx.NAMES},
           en="when is my {event} with {name}", de="wann ist {event:my_nom} mit {name}",
           es="cuándo es {event:my} con {name}", fr="quand a lieu {event:my} avec {name}",
           it="quando è {event:my} con {name}", zh="我 和 {name} 的 {event} 是 什么 时候"),
        _t("event_answer", "event_info", d, meeting,
           en="your {event} with {name} is {day} {time:at}", de="{event:your_nom} mit {name} ist {day} {time:at}",
           es="{event:your} con {name} es {day} {time:at}", fr="{event:your} avec {name} est {day} {time:at}",
           it="{event:your} con {name} è {day} {time:at}", zh="你 和 {name} 的 {event} 在 {day} {time}"),
        _t("event_moved", "event_info", d, meeting,
           en="your {event} with {name} was moved {day:to} {time:at}",
           de="{event:your_nom} mit {name} wurde {day:to} {time:at} verschoben",
           es="{event:your} con {name} se ha cambiado {day:to} {time:at}",
           fr=_agree(_feminine("fr", "event"), "{event:your} avec {name} a été déplacée {day:to} {time:at}",
                     "{event:your} avec {name} a été déplacé {day:to} {time:at}"),
           it=_agree(_feminine("it", "event"), "{event:your} con {name} è stata spostata {day:to} {time:at}",
                     "{event:your} con {name} è stato spostato {day:to} {time:at}"),
           zh="你 和 {name} 的 {event} 改 到 了 {day:to} {time}"),
        _t("birthday_query", "birthday", d, {"name": lx.NAMES},
           en="when is {name}'s birthday", de="wann hat {name} geburtstag", es="cuándo es el cumpleaños de {name}",
           fr="quand est l'anniversaire de {name}", it="quando è il compleanno di {name}",
           zh="{name} 的 生日 是 哪 天"),
        _t("birthday_answer", "birthday", d, {"name": lx.NAMES, "date": lx.DATES},
           en="{name}'s birthday is {date:on}", de="{name} hat {date:on} geburtstag",
           es="el cumpleaños de {name} es {date}", fr="l'anniversaire de {name} est {date}",
           it="il compleanno di {name} è {date}", zh="{name} 的 生日 是 {date}"),
        _t("date_today", "dates", d, {"weekday": lx.WEEKDAYS, "date": lx.DATES},
           en="today is {weekday} {date}", de="heute ist {weekday} {date}", es="hoy es {weekday} {date:bare}",
           fr="aujourd'hui nous sommes le {weekday} {date:bare}", it="oggi è {weekday} {date:bare}",
           zh="今天 是 {date} {weekday}"),
        _t("weekday_query", "dates", d, {"date": lx.DATES},
           en="what day of the week is {date}", de="welcher wochentag ist {date}",
           es="qué día de la semana es {date}", fr="quel jour de la semaine tombe {date}",
           it="che giorno della settimana è {date}", zh="{date} 是 星期 几"),
        _t("holiday_query", "holiday", d, {"holiday": lx.HOLIDAYS},
           en="how many days are left {holiday}", de="wie viele tage sind es noch {holiday}",
           es="cuántos días faltan {holiday}", fr="combien de jours reste-t-il {holiday}",
           it="quanti giorni mancano {holiday}", zh="离 {holiday} 还 有 几 天"),
        _t("holiday_answer", "holiday", d, {"holiday": lx.HOLIDAYS, "left": lx.DAYS_LEFT},
           en="there are {left} left {holiday}", de="es sind noch {left} {holiday}", es="faltan {left} {holiday}",
           fr="il reste {left} {holiday}", it="mancano {left} {holiday}", zh="离 {holiday} 还 有 {left}"),
        _t("month_days_query", "month_facts", d, {"month": lx.MONTHS},
           en="how many days does {month} have", de="wie viele tage hat der {month}",
           es="cuántos días tiene {month}", fr="combien de jours y a-t-il en {month}",
           it="quanti giorni ha {month}", zh="{month} 有 多少 天"),
        _t("month_days_answer", "month_facts", d, {"month": lx.MONTHS},
           en="{month} has {month:days}", de="der {month} hat {month:days}", es="{month} tiene {month:days}",
           fr="il y a {month:days} en {month}", it="{month} ha {month:days}", zh="{month} 有 {month:days}"),
    ]  # fmt: skip


def _weather() -> list[Template]:
    d = "weather"
    return [
        _t("forecast_query", "weather_forecast", d, {"city": lx.CITIES, "day": lx.FORECAST_DAYS},
           en="what will the weather be like in {city} {day}", de="wie wird das wetter {day} in {city}",
           es="qué tiempo hará {day} en {city}", fr="quel temps fera-t-il {day} à {city}",
           it="che tempo farà {day} a {city}", zh="{city} {day} 天气 怎么样"),
        _t("precipitation_query", "weather_forecast", d,
           {"precip": lx.PRECIPITATION, "city": lx.CITIES, "day": lx.DAYS_WITH_TODAY},
           en="will it {precip} in {city} {day}", de="{precip} es {day} in {city}",
           es="va a {precip} {day} en {city}", fr="est-ce qu'il va {precip} {day} à {city}",
           it="{precip} {day} a {city}", zh="{city} {day} 会 {precip} 吗"),
        _t("umbrella_query", "weather_forecast", d, {"city": lx.CITIES, "day": lx.DAYS_WITH_TODAY},
           en="do i need an umbrella in {city} {day}", de="brauche ich {day} in {city} einen regenschirm",
           es="necesito paraguas {day} en {city}", fr="est-ce que j'ai besoin d'un parapluie {day} à {city}",
           it="mi serve l'ombrello {day} a {city}", zh="我 {day} 在 {city} 需要 带 伞 吗"),
        _t("forecast_answer", "weather_report", d,
           {"city": lx.CITIES, "day": lx.FORECAST_DAYS, "cond": lx.CONDITIONS, "temp": lx.HIGHS},
           en="the weather in {city} {day} will be {cond} with a high of {temp}",
           de="das wetter in {city} wird {day} {cond} mit bis zu {temp:dat}",
           es="el tiempo en {city} {day} será {cond} con una máxima de {temp}",
           fr="{day} à {city} le temps sera {cond} avec un maximum de {temp}",
           it="{day} a {city} il tempo sarà {cond} con una massima di {temp}",
           zh="{city} {day} 天气 {cond} 最高 气温 {temp}"),
        _t("temperature_now", "weather_report", d, {"city": lx.CITIES, "temp": lx.HIGHS},
           en="the temperature in {city} is currently {temp}", de="die temperatur in {city} beträgt gerade {temp}",
           es="la temperatura en {city} es ahora de {temp}", fr="la température à {city} est actuellement de {temp}",
           it="la temperatura a {city} è attualmente di {temp}", zh="{city} 现在 的 气温 是 {temp}"),
    ]  # fmt: skip


def _messages() -> list[Template]:
    d = "messages"
    return [
        _t("text_that", "message_send", d, {"name": lx.NAMES, "msg": lx.MESSAGES},
           en="text {name} that {msg}", de="schreib {name} dass {msg}", es="escríbele a {name} que {msg}",
           fr="écris à {name} que {msg}", it="scrivi a {name} che {msg}", zh="给 {name} 发 消息 说 {msg}"),
        _t("tell_that", "message_send", d, {"name": lx.NAMES, "msg": lx.MESSAGES},
           en="tell {name} that {msg}", de="sag {name} dass {msg}", es="dile a {name} que {msg}",
           fr="dis à {name} que {msg}", it="avvisa {name} che {msg}", zh="告诉 {name} {msg}"),
        _t("text_arrival", "message_send", d, {"name": lx.NAMES, "delay": lx.DELAYS},
           en="text {name} that i'll be there {delay}", de="schreib {name} dass ich {delay} da bin",
           es="escríbele a {name} que llego {delay}", fr="écris à {name} que j'arrive {delay}",
           it="scrivi a {name} che arrivo {delay}", zh="给 {name} 发 消息 说 我 {delay} 到"),
        _t("read_last_message", "message_read", d, {"name": lx.NAMES},
           en="read me the last message from {name}", de="lies mir die letzte nachricht von {name} vor",
           es="léeme el último mensaje de {name}", fr="lis-moi le dernier message de {name}",
           it="leggimi l'ultimo messaggio di {name}", zh="给 我 读 一下 {name} 的 最后 一 条 消息"),
        _t("new_messages_query", "message_read", d, {"name": lx.NAMES},
           en="do i have any new messages from {name}", de="habe ich neue nachrichten von {name}",
           es="tengo mensajes nuevos de {name}", fr="est-ce que j'ai de nouveaux messages de {name}",
           it="ho nuovi messaggi da {name}", zh="我 有 {name} 的 新 消息 吗"),
        _t("new_messages_answer", "message_read", d, {"name": lx.NAMES, "count": lx.MESSAGE_COUNTS},
           en="you have {count} from {name}", de="du hast {count} von {name}", es="tienes {count} de {name}",
           fr="tu as {count} de {name}", it="hai {count} da {name}", zh="{name} 给 你 发 了 {count}"),
        _t("call_name", "call", d, {"name": lx.NAMES},
           en="give {name} a call", de="ruf {name} an", es="llama a {name}", fr="appelle {name}", it="chiama {name}",
           zh="给 {name} 打 电话"),
        _t("video_call", "call", d, {"name": lx.NAMES},
           en="start a video call with {name}", de="starte einen videoanruf mit {name}",
           es="inicia una videollamada con {name}", fr="lance un appel vidéo avec {name}",
           it="avvia una videochiamata con {name}", zh="和 {name} 开始 视频 通话"),
        _t("call_back", "call", d, {"name": lx.NAMES},
           en="call {name} back", de="ruf {name} zurück", es="devuélvele la llamada a {name}",
           fr="rappelle {name}", it="richiama {name}", zh="给 {name} 回 电话"),
        _t("email_about", "email", d, {"name": lx.NAMES, "topic": lx.TOPICS},
           en="send an email to {name} about {topic:the}", de="schick {name} eine e-mail über {topic:acc}",
           es="envía un correo a {name} sobre {topic:def}", fr="envoie un e-mail à {name} à propos {topic:of}",
           it="manda un'email a {name} {topic:on}", zh="给 {name} 发 一 封 关于 {topic} 的 邮件"),
        _t("email_reply_query", "email", d, {"name": lx.NAMES, "topic": lx.TOPICS},
           en="did {name} reply to my email about {topic:the}",
           de="hat {name} auf meine e-mail über {topic:acc} geantwortet",
           es="ha respondido {name} a mi correo sobre {topic:def}",
           fr="est-ce que {name} a répondu à mon e-mail à propos {topic:of}",
           it="{name} ha risposto alla mia email {topic:on}", zh="{name} 回复 了 我 关于 {topic} 的 邮件 吗"),
    ]  # fmt: skip


def _travel() -> list[Template]:
    d = "travel"
    trip = {"origin": lx.CITIES, "destination": lx.CITIES}
    route = {"place": lx.PLACES, "mode": lx.MODES}
    cities = {"a": lx.CITIES, "b": lx.CITIES}
    return [
        _t("flight_search", "flight", d, {**trip, "day": lx.DAYS},
           en="find a flight from {origin} to {destination} {day:for}",
           de="such einen flug von {origin} nach {destination} {day:for}",
           es="busca un vuelo de {origin} a {destination} {day:for}",
           fr="cherche un vol de {origin} à {destination} {day:for}",
           it="cerca un volo da {origin} a {destination} {day:for}",
           zh="找 一 个 {day:for} 从 {origin} 到 {destination} 的 航班", check=_different("origin", "destination")),
        _t("flight_delay_query", "flight", d, {"city": lx.CITIES},
           en="is my flight to {city} delayed", de="hat mein flug nach {city} verspätung",
           es="tiene retraso mi vuelo a {city}", fr="est-ce que mon vol pour {city} a du retard",
           it="il mio volo per {city} è in ritardo", zh="我 去 {city} 的 航班 晚点 了 吗"),
        _t("flight_departure", "flight", d, {"city": lx.CITIES, "time": lx.TIMETABLE_TIMES},
           en="your flight to {city} departs {time:at}", de="dein flug nach {city} startet {time:at}",
           es="tu vuelo a {city} sale {time:at}", fr="ton vol pour {city} part {time:at}",
           it="il tuo volo per {city} parte {time:at}", zh="你 去 {city} 的 航班 {time} 起飞"),
        _t("next_train_query", "train", d, {"city": lx.CITIES},
           en="when does the next train to {city} leave", de="wann fährt der nächste zug nach {city}",
           es="cuándo sale el próximo tren a {city}", fr="quand part le prochain train pour {city}",
           it="quando parte il prossimo treno per {city}", zh="下 一 班 去 {city} 的 火车 什么 时候 出发"),
        _t("next_train_answer", "train", d, {"city": lx.CITIES, "time": lx.TIMETABLE_TIMES, "platform": lx.PLATFORMS},
           en="the next train to {city} leaves {time:at} from platform {platform}",
           de="der nächste zug nach {city} fährt {time:at} von gleis {platform} ab",
           es="el próximo tren a {city} sale {time:at} del andén {platform}",
           fr="le prochain train pour {city} part {time:at} de la voie {platform}",
           it="il prossimo treno per {city} parte {time:at} dal binario {platform}",
           zh="下 一 班 去 {city} 的 火车 {time} 从 {platform} 号 站台 出发"),
        _t("hotel_book", "hotel", d, {"city": lx.CITIES, "nights": lx.NIGHTS},
           en="book a hotel room in {city} for {nights}", de="buch ein hotelzimmer in {city} für {nights}",
           es="reserva una habitación de hotel en {city} para {nights}",
           fr="réserve une chambre d'hôtel à {city} pour {nights}",
           it="prenota una camera d'albergo a {city} per {nights}", zh="在 {city} 订 一 间 酒店 房间 住 {nights}"),
        _t("hotel_price_query", "hotel", d, {"city": lx.CITIES},
           en="how much is a night at a hotel in {city}", de="was kostet eine nacht im hotel in {city}",
           es="cuánto cuesta una noche de hotel en {city}", fr="combien coûte une nuit d'hôtel à {city}",
           it="quanto costa una notte in albergo a {city}", zh="{city} 的 酒店 一 晚 多少 钱"),
        _t("hotel_price_answer", "hotel", d, {"city": lx.CITIES, "price": lx.PRICES},
           en="a night at a hotel in {city} costs {price}", de="eine nacht im hotel in {city} kostet {price}",
           es="una noche de hotel en {city} cuesta {price}", fr="une nuit d'hôtel à {city} coûte {price}",
           it="una notte in albergo a {city} costa {price}", zh="{city} 的 酒店 一 晚 要 {price}"),
        _t("travel_time_query", "navigation", d, route,
           en="how long does it take to get to {place:the} {mode}", de="wie lange brauche ich {mode} {place:zu}",
           es="cuánto se tarda en llegar {place:to} {mode}", fr="combien de temps faut-il pour aller {place:to} {mode}",
           it="quanto ci vuole per arrivare {place:to} {mode}", zh="{mode} 去 {place} 要 多 长 时间"),
        _t("travel_time_answer", "navigation", d, {**route, "length": lx.TRAVEL_DURATIONS},
           en="it takes about {length} to get to {place:the} {mode}", de="{mode} brauchst du etwa {length} {place:zu}",
           es="se tarda aproximadamente {length} en llegar {place:to} {mode}",
           fr="il faut environ {length} pour aller {place:to} {mode}",
           it=_agree(_singular("it", "length"), "ci vuole circa {length} per arrivare {place:to} {mode}",
                     "ci vogliono circa {length} per arrivare {place:to} {mode}"),
           zh="{mode} 去 {place} 大约 要 {length}"),
        _t("nearest_place_query", "places", d, {"place": lx.PLACES},
           en="where is {place:nearest}", de="wo ist {place:nearest}", es="dónde está {place:nearest}",
           fr="où est {place:nearest}", it="dov'è {place:nearest}", zh="最近 的 {place} 在 哪里"),
        _t("place_nearby_query", "places", d, {"place": lx.PLACES},
           en="is there {place:a} near here", de="gibt es hier in der nähe {place:a_acc}",
           es="hay {place:a} por aquí cerca", fr="est-ce qu'il y a {place:a} près d'ici",
           it="c'è {place:a} qui vicino", zh="这 附近 有 {place} 吗"),
        _t("distance_query", "distance", d, cities,
           en="how far is it from {a} to {b}", de="wie weit ist es von {a} nach {b}",
           es="qué distancia hay de {a} a {b}", fr="quelle distance y a-t-il entre {a} et {b}",
           it="quanto dista {a} da {b}", zh="从 {a} 到 {b} 有 多 远", check=_different("a", "b")),
        _t("distance_answer", "distance", d, {**cities, "km": lx.DISTANCES},
           en="{a} is about {km} from {b}", de="{a} ist etwa {km} von {b} entfernt", es="{a} está a unos {km} de {b}",
           fr="{a} est à environ {km} de {b}", it="{a} dista circa {km} da {b}", zh="{a} 离 {b} 大约 {km}",
           check=_different("a", "b")),
        _t("fly_to_country", "trip", d, {"country": lx.COUNTRIES, "day": lx.DATED_DAYS},
           en="i'm flying {country:to} {day}", de="ich fliege {day} {country:to}", es="vuelo {country:to} {day}",
           fr="je prends l'avion pour {country} {day}", it="volo {country:to} {day}", zh="我 {day} 飞 去 {country}"),
        _t("visa_query", "trip", d, {"country": lx.COUNTRIES},
           en="do i need a visa for {country}", de="brauche ich ein visum für {country:acc}",
           es="necesito visado para {country}", fr="est-ce que j'ai besoin d'un visa pour {country}",
           it="mi serve un visto per {country}", zh="去 {country} 需要 签证 吗"),
    ]  # fmt: skip


def _food() -> list[Template]:
    d = "food"
    return [
        _t("shopping_add_count", "shopping_list", d, {"count": lx.FOOD_COUNTS},
           en="add {count} to my shopping list", de="setz {count} auf meine einkaufsliste",
           es="añade {count} a mi lista de la compra", fr="ajoute {count} à ma liste de courses",
           it="aggiungi {count} alla mia lista della spesa", zh="把 {count} 加 到 我 的 购物 清单 里"),
        _t("shopping_add_item", "shopping_list", d, {"item": lx.GROCERIES},
           en="add {item} to my shopping list", de="setz {item} auf meine einkaufsliste",
           es="añade {item} a mi lista de la compra", fr="ajoute {item:part} à ma liste de courses",
           it="aggiungi {item:def} alla mia lista della spesa", zh="把 {item} 加 到 我 的 购物 清单 里"),
        _t("shopping_remove_item", "shopping_list", d, {"item": lx.GROCERIES},
           en="remove {item:the} from my shopping list", de="streich {item:acc} von meiner einkaufsliste",
           es="quita {item:def} de mi lista de la compra", fr="enlève {item:def} de ma liste de courses",
           it="togli {item:def} dalla mia lista della spesa", zh="把 {item} 从 我 的 购物 清单 里 删掉"),
        _t("table_book", "restaurant", d, {"size": lx.PARTY_SIZES, "day": lx.DATED_DAYS, "time": lx.DINNER_TIMES},
           en="book a table for {size} {day} {time:at}", de="reservier einen tisch für {size} {day} {time:at}",
           es="reserva una mesa para {size} {day} {time:at}", fr="réserve une table pour {size} {day} {time:at}",
           it="prenota un tavolo per {size} {day} {time:at}", zh="订 一 张 {day} {time} 的 {size} 桌"),
        _t("restaurant_find", "restaurant", d, {"cuisine": lx.CUISINES, "city": lx.CITIES},
           en="find {cuisine} in {city}", de="such {cuisine} in {city}", es="busca {cuisine} en {city}",
           fr="cherche {cuisine} à {city}", it="cerca {cuisine} a {city}", zh="在 {city} 找 一 家 {cuisine}"),
    ]  # fmt: skip


def _numbers() -> list[Template]:
    d = "numbers"
    return [
        _t("math_query", "math", d, {"problem": lx.PROBLEMS},
           en="what is {problem}", de="was ist {problem}", es="cuánto es {problem}", fr="combien font {problem}",
           it="quanto fa {problem}", zh="{problem} 等于 多少"),
        _t("math_answer", "math", d, {"problem": lx.PROBLEMS},
           en="{problem} is {problem:result}", de="{problem} ist {problem:result}",
           es="{problem} es igual a {problem:result}", fr="{problem} égale {problem:result}",
           it="{problem} fa {problem:result}", zh="{problem} 等于 {problem:result}"),
        _t("ticket_price_query", "prices", d, {"city": lx.CITIES},
           en="how much is a ticket to {city}", de="was kostet ein ticket nach {city}",
           es="cuánto cuesta un billete a {city}", fr="combien coûte un billet pour {city}",
           it="quanto costa un biglietto per {city}", zh="去 {city} 的 票 多少 钱"),
        _t("ticket_price_answer", "prices", d, {"city": lx.CITIES, "price": lx.PRICES},
           en="a ticket to {city} costs {price}", de="ein ticket nach {city} kostet {price}",
           es="un billete a {city} cuesta {price}", fr="un billet pour {city} coûte {price}",
           it="un biglietto per {city} costa {price}", zh="去 {city} 的 票 要 {price}"),
        _t("total_answer", "prices", d, {"price": lx.PRICES},
           en="the total is {price}", de="das macht zusammen {price}", es="el total es de {price}",
           fr="le total est de {price}", it="il totale è di {price}", zh="一共 是 {price}"),
        _t("phone_number", "phone", d, {"number": lx.PHONE_NUMBERS},
           en="my phone number is {number}", de="meine telefonnummer ist {number}",
           es="mi número de teléfono es el {number}", fr="mon numéro de téléphone est le {number}",
           it="il mio numero di telefono è {number}", zh="我 的 电话 号码 是 {number}"),
        _t("phone_dial", "phone", d, {"number": lx.PHONE_NUMBERS},
           en="dial {number}", de="wähl {number}", es="marca el {number}", fr="compose le {number}",
           it="componi il numero {number}", zh="拨打 {number}"),
        _t("age_query", "age", d, {"name": lx.NAMES},
           en="how old is {name}", de="wie alt ist {name}", es="cuántos años tiene {name}", fr="quel âge a {name}",
           it="quanti anni ha {name}", zh="{name} 多大 了"),
        _t("age_answer", "age", d, {"name": lx.NAMES, "age": lx.AGES},
           en="{name} is {age}", de="{name} ist {age:nom}", es="{name} tiene {age}", fr="{name} a {age}",
           it="{name} ha {age}", zh="{name} {age} 了"),
        _t("age_turns", "age", d, {"name": lx.NAMES, "n": lx.TURNING, "day": lx.DATED_DAYS},
           en="{name} turns {n} {day}", de="{name} wird {day} {n}", es="{name} cumple {n:m} años {day}",
           fr="{name} aura {n:m} ans {day}", it="{name} compie {n:m} anni {day}", zh="{name} {day} 就 {n:m} 岁 了"),
        _t("score_ended", "sports", d, {"a": lx.SCORES, "b": lx.SCORES},
           en="the game ended {a} to {b}", de="das spiel endete {a} zu {b}", es="el partido terminó {a} a {b}",
           fr="le match s'est terminé {a} à {b}", it="la partita è finita {a} a {b}", zh="比赛 最后 {a} 比 {b}"),
        _t("score_won", "sports", d, {"city": lx.CITIES, "a": lx.SCORES, "b": lx.SCORES},
           en="{city} won the game {a} to {b}", de="{city} hat das spiel {a} zu {b} gewonnen",
           es="{city} ganó el partido {a} a {b}", fr="{city} a gagné le match {a} à {b}",
           it="{city} ha vinto la partita {a} a {b}", zh="{city} 以 {a} 比 {b} 赢 了 比赛",
           check=lambda v: v["a"].n > v["b"].n),
    ]  # fmt: skip


def _qa() -> list[Template]:
    d = "qa"
    return [
        _t("capital_query", "capital", d, {"country": lx.COUNTRIES},
           en="what's the capital {country:of}", de="was ist die hauptstadt {country:of}",
           es="cuál es la capital {country:of}", fr="quelle est la capitale {country:of}",
           it="qual è la capitale {country:of}", zh="{country} 的 首都 是 哪里"),
        _t("capital_answer", "capital", d, {"country": lx.COUNTRIES},
           en="the capital {country:of} is {country:capital}", de="die hauptstadt {country:of} ist {country:capital}",
           es="la capital {country:of} es {country:capital}", fr="la capitale {country:of} est {country:capital}",
           it="la capitale {country:of} è {country:capital}", zh="{country} 的 首都 是 {country:capital}"),
        _t("time_in_city_query", "world_time", d, {"city": lx.CITIES},
           en="what time is it in {city}", de="wie spät ist es in {city}", es="qué hora es en {city}",
           fr="quelle heure est-il à {city}", it="che ore sono a {city}", zh="{city} 现在 几 点"),
        _t("time_in_city_answer", "world_time", d, {"city": lx.CITIES, "time": lx.CLOCK_TIMES},
           en="it's {time} in {city}", de="in {city} ist es {time}",
           es=_agree(lambda v: v["time"].is_one(), "en {city} es {time}", "en {city} son {time}"),
           fr="il est {time} à {city}",
           it=_agree(lambda v: v["time"].is_one(), "a {city} è {time}", "a {city} sono {time}"),
           zh="{city} 现在 是 {time}"),
        _t("translate_message", "language", d, {"name": lx.NAMES, "language": lx.LANGUAGE_NAMES},
           en="translate the last message from {name} {language:into}",
           de="übersetz die letzte nachricht von {name} {language:into}",
           es="traduce el último mensaje de {name} {language:into}",
           fr="traduis le dernier message de {name} {language:into}",
           it="traduci l'ultimo messaggio di {name} {language:into}",
           zh="把 {name} 的 最后 一 条 消息 翻译 成 {language}"),
        _t("speaks_language_query", "language", d, {"name": lx.NAMES, "language": lx.LANGUAGE_NAMES},
           en="does {name} speak {language}", de="spricht {name} {language}", es="habla {name} {language}",
           fr="est-ce que {name} parle {language}", it="{name} parla {language}", zh="{name} 会 说 {language} 吗"),
        _t("say_word_query", "language", d, {"word": lx.WORDS, "language": lx.FOREIGN_LANGUAGES},
           en="how do you say {word} {language:in}", de="was heißt {word} {language:in}",
           es="cómo se dice {word} {language:in}", fr="comment dit-on {word} {language:in}",
           it="come si dice {word} {language:in}", zh="{word} 用 {language} 怎么 说"),
    ]  # fmt: skip


def _conversation() -> list[Template]:
    d = "conversation"
    return [
        _t("greeting_name", "greeting", d, {"greeting": lx.GREETINGS, "name": lx.NAMES},
           en="{greeting} {name} how are you", de="{greeting} {name} wie geht es dir",
           es="{greeting} {name} cómo estás", fr="{greeting} {name} comment ça va", it="{greeting} {name} come stai",
           zh="{name} {greeting} 最近 好 吗"),
        _t("wish_from_me", "greeting", d, {"wish": lx.WISHES, "name": lx.NAMES},
           en="say {wish} to {name} from me", de="sag {name} {wish} von mir", es="dile {wish} a {name} de mi parte",
           fr="dis {wish} à {name} de ma part", it="augura {wish} a {name} da parte mia",
           zh="替 我 祝 {name} {wish}"),
        _t("greeting_day", "greeting", d, {"name": lx.NAMES},
           en="hi {name} how was your day", de="hallo {name} wie war dein tag", es="hola {name} qué tal tu día",
           fr="salut {name} comment s'est passée ta journée", it="ciao {name} com'è andata la giornata",
           zh="{name} 你好 今天 过 得 怎么样"),
        _t("thanks_see_you", "farewell", d, {"name": lx.NAMES, "day": lx.DAYS},
           en="thanks {name} {day:see}", de="danke {name} {day:see}", es="gracias {name} {day:see}",
           fr="merci {name} {day:see}", it="grazie {name} {day:see}", zh="谢谢 {name} {day:see}"),
        _t("free_query", "plans", d, {"day": lx.DATED_DAYS, "time": lx.DAY_TIMES},
           en="are you free {day} {time:at}", de="hast du {day} {time:at} zeit", es="estás libre {day} {time:at}",
           fr="est-ce que tu es libre {day} {time:at}", it="hai tempo {day} {time:at}", zh="你 {day} {time} 有 空 吗"),
        _t("meet_at_place", "plans", d, {"place": lx.PLACES, "time": lx.DAY_TIMES},
           en="let's meet in front of {place:the} {time:at}", de="treffen wir uns {time:at} vor {place:dat}",
           es="quedamos {time:at} delante {place:of}", fr="retrouvons-nous {time:at} devant {place:def}",
           it="vediamoci {time:at} davanti {place:to}", zh="我们 {time} 在 {place} 门口 见"),
    ]  # fmt: skip


@cache
def all_templates() -> tuple[Template, ...]:
    """Every template of the grammar, in a fixed order."""
    return tuple(
        _smart_home() + _timers() + _calendar() + _weather() + _messages() + _travel() + _food() + _numbers()
        + _qa() + _conversation()
    )  # fmt: skip
