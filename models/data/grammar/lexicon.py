"""The words that fill template slots, in all six languages (mostly data).

Each entry is written once per language with what its grammar needs: gender and number for nouns (articles and
contractions are derived by `morphology`), separable verbs marked with "|" for German ("den müll raus|bringen"),
and several forms for phrases used in more than one way (days: "on", "for", "to", "see you").
"""

from __future__ import annotations

import random

from . import numbers
from .morphology import Noun
from .values import (
    At,
    Both,
    ClockTime,
    Count,
    Country,
    Date,
    Digits,
    Entry,
    In,
    Number,
    Percent,
    Person,
    Phrase,
    Price,
    Problem,
    Quantity,
    Temperature,
)

N = Noun
_LANGS = ("en", "de", "es", "fr", "it", "zh")


Spec = str | tuple | Noun  # a Noun, its text, or the arguments of Noun(...)


def _noun(spec: Spec) -> Noun:
    if isinstance(spec, Noun):
        return spec
    if isinstance(spec, str):
        return Noun(spec)
    return Noun(*spec)


def noun(en: str | Noun, de: Spec, es: Spec, fr: Spec, it: Spec, zh: str) -> Entry:
    """A noun entry keyed by its English form; Latin-script languages give (text, gender) or a `Noun`."""
    forms = dict(zip(_LANGS, (en, de, es, fr, it, zh), strict=True))
    key = en if isinstance(en, str) else en.text
    return Entry(key, {lang: _noun(spec) for lang, spec in forms.items()})


def phrase(en: str, de: str, es: str, fr: str, it: str, zh: str) -> Phrase:
    """Fixed words per language, keyed by the English."""
    return Phrase(en, dict(zip(_LANGS, (en, de, es, fr, it, zh), strict=True)))


# ---------------------------------------------------------------------------------------------------------------
# Smart home

ROOMS = [
    noun("kitchen", ("küche", "f"), ("cocina", "f"), ("cuisine", "f"), ("cucina", "f"), "厨房"),
    noun("living room", ("wohnzimmer", "n"), ("salón", "m"), ("salon", "m"), ("soggiorno", "m"), "客厅"),
    noun("bedroom", ("schlafzimmer", "n"), ("dormitorio", "m"), ("chambre", "f"), ("camera da letto", "f"), "卧室"),
    noun("bathroom", ("badezimmer", "n"), ("baño", "m"), ("salle de bains", "f"), ("bagno", "m"), "浴室"),
    noun("office", ("arbeitszimmer", "n"), ("despacho", "m"), ("bureau", "m"), ("ufficio", "m"), "书房"),
    noun("hallway", ("flur", "m"), ("pasillo", "m"), ("couloir", "m"), ("corridoio", "m"), "走廊"),
    noun("dining room", ("esszimmer", "n"), ("comedor", "m"), ("salle à manger", "f"), ("sala da pranzo", "f"), "餐厅"),
    noun("children's room", ("kinderzimmer", "n"), ("habitación de los niños", "f"), ("chambre des enfants", "f"),
         ("cameretta", "f"), "儿童房"),
    noun("guest room", ("gästezimmer", "n"), ("habitación de invitados", "f"), ("chambre d'amis", "f"),
         ("camera degli ospiti", "f"), "客房"),
    noun("laundry room", ("waschküche", "f"), ("lavadero", "m"), ("buanderie", "f"), ("lavanderia", "f"), "洗衣房"),
    noun("basement", ("keller", "m"), ("sótano", "m"), ("sous-sol", "m"), ("seminterrato", "m"), "地下室"),
    noun("attic", N("dachboden", "m", loc="auf"), ("desván", "m"), ("grenier", "m"), ("soffitta", "f"), "阁楼"),
    noun("garage", ("garage", "f"), ("garaje", "m"), ("garage", "m"), ("garage", "m"), "车库"),
    noun("garden", ("garten", "m"), ("jardín", "m"), ("jardin", "m"), ("giardino", "m"), "花园"),
    noun(N("balcony", loc="on"), N("balkon", "m", loc="auf"), ("balcón", "m"), N("balcon", "m", loc="sur"),
         N("balcone", "m", loc="su"), "阳台"),
]  # fmt: skip
INDOOR_ROOMS = ROOMS[:10]  # lived-in rooms: heated, vacuumed, with blinds

DEVICES = [
    noun("light", ("licht", "n"), ("luz", "f"), ("lumière", "f"), ("luce", "f"), "灯"),
    noun("lamp", ("lampe", "f"), ("lámpara", "f"), ("lampe", "f"), ("lampada", "f"), "台灯"),
    noun("television", ("fernseher", "m"), ("televisión", "f"), ("télévision", "f"), ("televisione", "f"), "电视"),
    noun("fan", ("ventilator", "m"), ("ventilador", "m"), ("ventilateur", "m"), ("ventilatore", "m"), "风扇"),
    noun("heating", ("heizung", "f"), ("calefacción", "f"), ("chauffage", "m"), ("riscaldamento", "m"), "暖气"),
    noun("air conditioning", ("klimaanlage", "f"), ("aire acondicionado", "m"), ("climatisation", "f"),
         ("aria condizionata", "f"), "空调"),
    noun("radio", ("radio", "n"), ("radio", "f"), ("radio", "f"), ("radio", "f"), "收音机"),
    noun("coffee machine", ("kaffeemaschine", "f"), ("cafetera", "f"), ("machine à café", "f"),
         ("macchina del caffè", "f"), "咖啡机"),
    noun("speaker", ("lautsprecher", "m"), ("altavoz", "m"), ("enceinte", "f"), ("altoparlante", "m"), "音箱"),
    noun("computer", ("computer", "m"), ("ordenador", "m"), ("ordinateur", "m"), ("computer", "m"), "电脑"),
    noun("projector", ("beamer", "m"), ("proyector", "m"), ("projecteur", "m"), ("proiettore", "m"), "投影仪"),
    noun("humidifier", ("luftbefeuchter", "m"), ("humidificador", "m"), ("humidificateur", "m"),
         ("umidificatore", "m"), "加湿器"),
    noun("air purifier", ("luftreiniger", "m"), ("purificador de aire", "m"), ("purificateur d'air", "m"),
         ("purificatore d'aria", "m"), "空气 净化器"),
    noun("kettle", ("wasserkocher", "m"), ("hervidor", "m"), ("bouilloire", "f"), ("bollitore", "m"), "电水壶"),
    noun("christmas lights", ("lichterkette", "f"), N("luces de navidad", "f", True), ("guirlande lumineuse", "f"),
         N("luci di natale", "f", True), "圣诞 彩灯"),
]  # fmt: skip

COLORS = [
    noun("red", "rot", "rojo", "rouge", "rosso", "红色"),
    noun("blue", "blau", "azul", "bleu", "blu", "蓝色"),
    noun("green", "grün", "verde", "vert", "verde", "绿色"),
    noun("yellow", "gelb", "amarillo", "jaune", "giallo", "黄色"),
    noun("orange", "orange", "naranja", "orange", "arancione", "橙色"),
    noun("purple", "lila", "morado", "violet", "viola", "紫色"),
    noun("pink", "rosa", "rosa", "rose", "rosa", "粉色"),
    noun("white", "weiß", "blanco", "blanc", "bianco", "白色"),
    noun("turquoise", "türkis", "turquesa", "turquoise", "turchese", "青绿色"),
]

# Doors: es, fr and it nouns are feminine, which the "is the door locked" template relies on.
DOORS = [
    noun("front door", ("haustür", "f"), ("puerta principal", "f"), ("porte d'entrée", "f"),
         ("porta d'ingresso", "f"), "前门"),
    noun("back door", ("hintertür", "f"), ("puerta trasera", "f"), ("porte de derrière", "f"),
         ("porta sul retro", "f"), "后门"),
    noun("garage door", ("garagentor", "n"), ("puerta del garaje", "f"), ("porte du garage", "f"),
         ("porta del garage", "f"), "车库 门"),
    noun("patio door", ("terrassentür", "f"), ("puerta de la terraza", "f"), ("porte de la terrasse", "f"),
         ("porta della terrazza", "f"), "露台 门"),
    noun("basement door", ("kellertür", "f"), ("puerta del sótano", "f"), ("porte de la cave", "f"),
         ("porta della cantina", "f"), "地下室 门"),
]  # fmt: skip

GENRES = [
    phrase("jazz", "jazz", "jazz", "du jazz", "musica jazz", "爵士乐"),
    phrase("classical music", "klassische musik", "música clásica", "de la musique classique", "musica classica",
           "古典 音乐"),
    phrase("rock music", "rockmusik", "música rock", "du rock", "musica rock", "摇滚乐"),
    phrase("pop music", "popmusik", "música pop", "de la pop", "musica pop", "流行 音乐"),
    phrase("hip hop", "hiphop", "hip hop", "du hip-hop", "hip hop", "嘻哈 音乐"),
    phrase("electronic music", "elektronische musik", "música electrónica", "de la musique électronique",
           "musica elettronica", "电子 音乐"),
    phrase("country music", "countrymusik", "música country", "de la country", "musica country", "乡村 音乐"),
    phrase("reggae", "reggae", "reggae", "du reggae", "reggae", "雷鬼 音乐"),
    phrase("relaxing music", "entspannende musik", "música relajante", "de la musique relaxante",
           "musica rilassante", "轻松 的 音乐"),
    phrase("children's songs", "kinderlieder", "canciones infantiles", "des chansons pour enfants",
           "canzoni per bambini", "儿歌"),
    phrase("piano music", "klaviermusik", "música de piano", "de la musique pour piano", "musica per pianoforte",
           "钢琴 曲"),
    phrase("blues", "blues", "blues", "du blues", "blues", "蓝调 音乐"),
    phrase("christmas music", "weihnachtsmusik", "música navideña", "de la musique de noël", "musica natalizia",
           "圣诞 音乐"),
    phrase("opera", "oper", "ópera", "de l'opéra", "musica lirica", "歌剧"),
]  # fmt: skip

APPLIANCES = [
    noun("washing machine", ("waschmaschine", "f"), ("lavadora", "f"), ("lave-linge", "m"), ("lavatrice", "f"),
         "洗衣机"),
    noun("dishwasher", ("spülmaschine", "f"), ("lavavajillas", "m"), ("lave-vaisselle", "m"),
         ("lavastoviglie", "f"), "洗碗机"),
    noun("dryer", ("trockner", "m"), ("secadora", "f"), ("sèche-linge", "m"), ("asciugatrice", "f"), "烘干机"),
    noun("robot vacuum", ("saugroboter", "m"), ("robot aspirador", "m"), ("aspirateur robot", "m"),
         ("robot aspirapolvere", "m"), "扫地 机器人"),
    noun("bread maker", ("brotbackautomat", "m"), ("panificadora", "f"), ("machine à pain", "f"),
         ("macchina del pane", "f"), "面包机"),
]  # fmt: skip

GADGETS = [
    noun("phone", ("handy", "n"), ("móvil", "m"), ("téléphone", "m"), ("telefono", "m"), "手机"),
    noun("tablet", ("tablet", "n"), ("tableta", "f"), ("tablette", "f"), ("tablet", "m"), "平板 电脑"),
    noun("laptop", ("laptop", "m"), ("portátil", "m"), ("ordinateur portable", "m"), ("portatile", "m"),
         "笔记本 电脑"),
    noun("smartwatch", ("smartwatch", "f"), ("reloj inteligente", "m"), ("montre connectée", "f"),
         ("smartwatch", "m"), "智能 手表"),
    noun("camera", ("kamera", "f"), ("cámara", "f"), ("appareil photo", "m"), ("fotocamera", "f"), "相机"),
    noun("e-reader", ("e-reader", "m"), ("lector de libros electrónicos", "m"), ("liseuse", "f"),
         ("lettore di ebook", "m"), "电子 阅读器"),
    noun("robot vacuum", ("saugroboter", "m"), ("robot aspirador", "m"), ("aspirateur robot", "m"),
         ("robot aspirapolvere", "m"), "扫地 机器人"),
    noun("electric toothbrush", ("elektrische zahnbürste", "f"), ("cepillo de dientes eléctrico", "m"),
         ("brosse à dents électrique", "f"), ("spazzolino elettrico", "m"), "电动 牙刷"),
]  # fmt: skip

# ---------------------------------------------------------------------------------------------------------------
# People and places

NAMES = [
    Person(name, zh)
    for name, zh in (
        ("anna", "安娜"), ("maria", "玛丽亚"), ("david", "大卫"), ("laura", "劳拉"), ("paul", "保罗"),
        ("sophie", "苏菲"), ("emma", "艾玛"), ("peter", "彼得"), ("julia", "朱莉娅"), ("marco", "马可"),
        ("sara", "萨拉"), ("daniel", "丹尼尔"), ("elena", "埃莱娜"), ("martin", "马丁"), ("clara", "克拉拉"),
        ("leo", "里奥"), ("nina", "妮娜"), ("hugo", "雨果"), ("lena", "莉娜"), ("oscar", "奥斯卡"),
        ("eva", "伊娃"), ("olivia", "奥利维亚"), ("sofia", "索菲亚"), ("tom", "汤姆"), ("lisa", "丽莎"),
        ("ben", "本"), ("mia", "米娅"), ("noah", "诺亚"), ("luca", "卢卡"), ("alice", "爱丽丝"),
        ("victor", "维克多"), ("carla", "卡拉"), ("sam", "山姆"), ("lucia", "露西娅"), ("li na", "李娜"),
        ("wang wei", "王伟"), ("chen jie", "陈杰"),
    )
]  # fmt: skip

_CITY_ROWS = """
berlin|berlin|berlín|berlin|berlino|柏林
paris|paris|parís|paris|parigi|巴黎
madrid|madrid|madrid|madrid|madrid|马德里
rome|rom|roma|rome|roma|罗马
london|london|londres|londres|londra|伦敦
new york|new york|nueva york|new york|new york|纽约
tokyo|tokio|tokio|tokyo|tokyo|东京
beijing|peking|pekín|pékin|pechino|北京
shanghai|shanghai|shanghái|shanghai|shanghai|上海
munich|münchen|múnich|munich|monaco di baviera|慕尼黑
vienna|wien|viena|vienne|vienna|维也纳
zurich|zürich|zúrich|zurich|zurigo|苏黎世
barcelona|barcelona|barcelona|barcelone|barcellona|巴塞罗那
lisbon|lissabon|lisboa|lisbonne|lisbona|里斯本
amsterdam|amsterdam|ámsterdam|amsterdam|amsterdam|阿姆斯特丹
brussels|brüssel|bruselas|bruxelles|bruxelles|布鲁塞尔
milan|mailand|milán|milan|milano|米兰
venice|venedig|venecia|venise|venezia|威尼斯
florence|florenz|florencia|florence|firenze|佛罗伦萨
naples|neapel|nápoles|naples|napoli|那不勒斯
hamburg|hamburg|hamburgo|hambourg|amburgo|汉堡
cologne|köln|colonia|cologne|colonia|科隆
lyon|lyon|lyon|lyon|lione|里昂
marseille|marseille|marsella|marseille|marsiglia|马赛
seville|sevilla|sevilla|séville|siviglia|塞维利亚
geneva|genf|ginebra|genève|ginevra|日内瓦
prague|prag|praga|prague|praga|布拉格
warsaw|warschau|varsovia|varsovie|varsavia|华沙
stockholm|stockholm|estocolmo|stockholm|stoccolma|斯德哥尔摩
copenhagen|kopenhagen|copenhague|copenhague|copenaghen|哥本哈根
dublin|dublin|dublín|dublin|dublino|都柏林
athens|athen|atenas|athènes|atene|雅典
oslo|oslo|oslo|oslo|oslo|奥斯陆
edinburgh|edinburgh|edimburgo|édimbourg|edimburgo|爱丁堡
istanbul|istanbul|estambul|istanbul|istanbul|伊斯坦布尔
moscow|moskau|moscú|moscou|mosca|莫斯科
sydney|sydney|sídney|sydney|sydney|悉尼
toronto|toronto|toronto|toronto|toronto|多伦多
chicago|chicago|chicago|chicago|chicago|芝加哥
los angeles|los angeles|los ángeles|los angeles|los angeles|洛杉矶
buenos aires|buenos aires|buenos aires|buenos aires|buenos aires|布宜诺斯艾利斯
hong kong|hongkong|hong kong|hong kong|hong kong|香港
singapore|singapur|singapur|singapour|singapore|新加坡
seoul|seoul|seúl|séoul|seul|首尔
bangkok|bangkok|bangkok|bangkok|bangkok|曼谷
mexico city|mexiko-stadt|ciudad de méxico|mexico|città del messico|墨西哥城
washington|washington|washington|washington|washington|华盛顿
ottawa|ottawa|ottawa|ottawa|ottawa|渥太华
canberra|canberra|canberra|canberra|canberra|堪培拉
brasilia|brasília|brasilia|brasília|brasilia|巴西利亚
new delhi|neu-delhi|nueva delhi|new delhi|nuova delhi|新德里
bern|bern|berna|berne|berna|伯尔尼
ankara|ankara|ankara|ankara|ankara|安卡拉
hanoi|hanoi|hanói|hanoï|hanoi|河内
rabat|rabat|rabat|rabat|rabat|拉巴特
lima|lima|lima|lima|lima|利马
santiago|santiago|santiago de chile|santiago|santiago del cile|圣地亚哥
"""
CITIES = [phrase(*row.split("|")) for row in _CITY_ROWS.strip().splitlines()]
_CITY = {c.key: c for c in CITIES}


def _country(capital: str, en: Spec, de: Spec, es: Spec, fr: Spec, it: Spec, zh: str) -> Country:
    """A country: plain strings are article-less names (en, de, es); fr and it always take an article."""
    forms = {lang: (N(spec, article=False) if isinstance(spec, str) and lang in ("en", "de", "es") else _noun(spec))
             for lang, spec in zip(_LANGS, (en, de, es, fr, it, zh), strict=True)}  # fmt: skip
    return Country(forms["en"].text, forms, _CITY[capital])


COUNTRIES = [
    _country("tokyo", "japan", "japan", "japón", ("japon", "m"), ("giappone", "m"), "日本"),
    _country("beijing", "china", "china", "china", ("chine", "f"), ("cina", "f"), "中国"),
    _country("paris", "france", "frankreich", "francia", ("france", "f"), ("francia", "f"), "法国"),
    _country("berlin", "germany", "deutschland", "alemania", ("allemagne", "f"), ("germania", "f"), "德国"),
    _country("rome", "italy", "italien", "italia", ("italie", "f"), ("italia", "f"), "意大利"),
    _country("madrid", "spain", "spanien", "españa", ("espagne", "f"), ("spagna", "f"), "西班牙"),
    _country("lisbon", "portugal", "portugal", "portugal", ("portugal", "m"), ("portogallo", "m"), "葡萄牙"),
    _country("mexico city", "mexico", "mexiko", "méxico", ("mexique", "m"), ("messico", "m"), "墨西哥"),
    _country("ottawa", "canada", "kanada", "canadá", ("canada", "m"), ("canada", "m"), "加拿大"),
    _country("brasilia", "brazil", "brasilien", "brasil", ("brésil", "m"), ("brasile", "m"), "巴西"),
    _country("buenos aires", "argentina", "argentinien", "argentina", ("argentine", "f"), ("argentina", "f"),
             "阿根廷"),
    _country("washington", N("united states"), N("usa", "f", True), "estados unidos",
             N("états-unis", "m", True), N("stati uniti", "m", True), "美国"),
    _country("london", N("united kingdom"), "großbritannien", N("reino unido", "m"), ("royaume-uni", "m"),
             N("regno unito", "m", loc="art"), "英国"),
    _country("bern", "switzerland", N("schweiz", "f"), "suiza", ("suisse", "f"), ("svizzera", "f"), "瑞士"),
    _country("vienna", "austria", "österreich", "austria", ("autriche", "f"), ("austria", "f"), "奥地利"),
    _country("athens", "greece", "griechenland", "grecia", ("grèce", "f"), ("grecia", "f"), "希腊"),
    _country("new delhi", "india", "indien", "india", ("inde", "f"), ("india", "f"), "印度"),
    _country("canberra", "australia", "australien", "australia", ("australie", "f"), ("australia", "f"),
             "澳大利亚"),
    _country("oslo", "norway", "norwegen", "noruega", ("norvège", "f"), ("norvegia", "f"), "挪威"),
    _country("stockholm", "sweden", "schweden", "suecia", ("suède", "f"), ("svezia", "f"), "瑞典"),
    _country("dublin", "ireland", "irland", "irlanda", ("irlande", "f"), ("irlanda", "f"), "爱尔兰"),
    _country("amsterdam", N("netherlands"), N("niederlande", "f", True, dative="niederlanden"),
             N("países bajos", "m", True), N("pays-bas", "m", True), N("paesi bassi", "m", True), "荷兰"),
    _country("brussels", "belgium", "belgien", "bélgica", ("belgique", "f"), ("belgio", "m"), "比利时"),
    _country("rabat", "morocco", "marokko", "marruecos", ("maroc", "m"), ("marocco", "m"), "摩洛哥"),
    _country("lima", "peru", "peru", "perú", ("pérou", "m"), ("perù", "m"), "秘鲁"),
    _country("santiago", "chile", "chile", "chile", ("chili", "m"), ("cile", "m"), "智利"),
    _country("bangkok", "thailand", "thailand", "tailandia", ("thaïlande", "f"), ("thailandia", "f"), "泰国"),
    _country("hanoi", "vietnam", "vietnam", "vietnam", ("vietnam", "m"), ("vietnam", "m"), "越南"),
    _country("seoul", "south korea", "südkorea", "corea del sur", ("corée du sud", "f"), ("corea del sud", "f"),
             "韩国"),
    _country("ankara", "turkey", N("türkei", "f"), "turquía", ("turquie", "f"), ("turchia", "f"), "土耳其"),
    _country("warsaw", "poland", "polen", "polonia", ("pologne", "f"), ("polonia", "f"), "波兰"),
    _country("copenhagen", "denmark", "dänemark", "dinamarca", ("danemark", "m"), ("danimarca", "f"), "丹麦"),
    _country("moscow", "russia", "russland", "rusia", ("russie", "f"), ("russia", "f"), "俄罗斯"),
    _country("prague", N("czech republic"), "tschechien", N("república checa", "f"), ("république tchèque", "f"),
             N("repubblica ceca", "f", loc="art"), "捷克"),
]  # fmt: skip

PLACES = [
    noun("airport", ("flughafen", "m"), ("aeropuerto", "m"), ("aéroport", "m"), ("aeroporto", "m"), "机场"),
    noun("train station", ("bahnhof", "m"), ("estación de tren", "f"), ("gare", "f"), ("stazione", "f"), "火车站"),
    noun("museum", ("museum", "n"), ("museo", "m"), ("musée", "m"), ("museo", "m"), "博物馆"),
    noun("beach", ("strand", "m"), ("playa", "f"), ("plage", "f"), ("spiaggia", "f"), "海滩"),
    noun("hospital", ("krankenhaus", "n"), ("hospital", "m"), ("hôpital", "m"), ("ospedale", "m"), "医院"),
    noun("supermarket", ("supermarkt", "m"), ("supermercado", "m"), ("supermarché", "m"), ("supermercato", "m"),
         "超市"),
    noun("pharmacy", ("apotheke", "f"), ("farmacia", "f"), ("pharmacie", "f"), ("farmacia", "f"), "药店"),
    noun("post office", ("post", "f"), ("oficina de correos", "f"), ("poste", "f"), ("ufficio postale", "m"), "邮局"),
    noun("library", ("bibliothek", "f"), ("biblioteca", "f"), ("bibliothèque", "f"), ("biblioteca", "f"), "图书馆"),
    noun("stadium", ("stadion", "n"), ("estadio", "m"), ("stade", "m"), ("stadio", "m"), "体育场"),
    noun("university", ("universität", "f"), ("universidad", "f"), ("université", "f"), ("università", "f"), "大学"),
    noun("zoo", ("zoo", "m"), ("zoológico", "m"), ("zoo", "m"), ("zoo", "m"), "动物园"),
    noun("bus station", ("busbahnhof", "m"), ("estación de autobuses", "f"), ("gare routière", "f"),
         ("stazione degli autobus", "f"), "汽车站"),
    noun("cinema", ("kino", "n"), ("cine", "m"), ("cinéma", "m"), ("cinema", "m"), "电影院"),
    noun("park", ("park", "m"), ("parque", "m"), ("parc", "m"), ("parco", "m"), "公园"),
    noun("bakery", ("bäckerei", "f"), ("panadería", "f"), ("boulangerie", "f"), ("panetteria", "f"), "面包店"),
    noun("gas station", ("tankstelle", "f"), ("gasolinera", "f"), ("station-service", "f"),
         ("distributore di benzina", "m"), "加油站"),
    noun("bank", ("bank", "f"), ("banco", "m"), ("banque", "f"), ("banca", "f"), "银行"),
]  # fmt: skip

MODES = [
    phrase("by car", "mit dem auto", "en coche", "en voiture", "in macchina", "开车"),
    phrase("by bike", "mit dem fahrrad", "en bicicleta", "à vélo", "in bici", "骑车"),
    phrase("on foot", "zu fuß", "a pie", "à pied", "a piedi", "走路"),
    phrase("by bus", "mit dem bus", "en autobús", "en bus", "in autobus", "坐 公交车"),
    phrase("by train", "mit dem zug", "en tren", "en train", "in treno", "坐 火车"),
    phrase("by subway", "mit der u-bahn", "en metro", "en métro", "in metropolitana", "坐 地铁"),
    phrase("by taxi", "mit dem taxi", "en taxi", "en taxi", "in taxi", "打车"),
]

CUISINES = [
    Phrase(key, dict(zip(_LANGS, (en, f"ein {de}es restaurant", f"un restaurante {es}", f"un restaurant {fr}",
                                   f"un ristorante {it}", f"{zh} 餐厅"), strict=True)))
    for key, en, de, es, fr, it, zh in (
        ("italian", "an italian restaurant", "italienisch", "italiano", "italien", "italiano", "意大利"),
        ("chinese", "a chinese restaurant", "chinesisch", "chino", "chinois", "cinese", "中国"),
        ("japanese", "a japanese restaurant", "japanisch", "japonés", "japonais", "giapponese", "日本"),
        ("mexican", "a mexican restaurant", "mexikanisch", "mexicano", "mexicain", "messicano", "墨西哥"),
        ("indian", "an indian restaurant", "indisch", "indio", "indien", "indiano", "印度"),
        ("thai", "a thai restaurant", "thailändisch", "tailandés", "thaïlandais", "thailandese", "泰国"),
        ("french", "a french restaurant", "französisch", "francés", "français", "francese", "法国"),
        ("greek", "a greek restaurant", "griechisch", "griego", "grec", "greco", "希腊"),
        ("spanish", "a spanish restaurant", "spanisch", "español", "espagnol", "spagnolo", "西班牙"),
        ("vegetarian", "a vegetarian restaurant", "vegetarisch", "vegetariano", "végétarien", "vegetariano", "素食"),
        ("turkish", "a turkish restaurant", "türkisch", "turco", "turc", "turco", "土耳其"),
        ("korean", "a korean restaurant", "koreanisch", "coreano", "coréen", "coreano", "韩国"),
        ("vietnamese", "a vietnamese restaurant", "vietnamesisch", "vietnamita", "vietnamien", "vietnamita", "越南"),
        ("lebanese", "a lebanese restaurant", "libanesisch", "libanés", "libanais", "libanese", "黎巴嫩"),
    )
]  # fmt: skip


def _language(en: str, de: str, es: str, fr: str, it: str, zh: str) -> Phrase:
    """A language name; hows "" (the name), "into" (translate into) and "in" (say in)."""
    return Phrase(en, {
        "en": {"": en, "into": f"into {en}", "in": f"in {en}"},
        "de": {"": de, "into": f"ins {de}e", "in": f"auf {de}"},
        "es": {"": es, "into": f"al {es}", "in": f"en {es}"},
        "fr": {"": fr, "into": f"en {fr}", "in": f"en {fr}"},
        "it": {"": it, "into": f"in {it}", "in": f"in {it}"},
        "zh": {"": zh, "into": zh, "in": zh},
    })  # fmt: skip


LANGUAGE_NAMES = [
    _language("german", "deutsch", "alemán", "allemand", "tedesco", "德语"),
    _language("english", "englisch", "inglés", "anglais", "inglese", "英语"),
    _language("spanish", "spanisch", "español", "espagnol", "spagnolo", "西班牙语"),
    _language("french", "französisch", "francés", "français", "francese", "法语"),
    _language("italian", "italienisch", "italiano", "italien", "italiano", "意大利语"),
    _language("chinese", "chinesisch", "chino", "chinois", "cinese", "中文"),
    _language("japanese", "japanisch", "japonés", "japonais", "giapponese", "日语"),
    _language("portuguese", "portugiesisch", "portugués", "portugais", "portoghese", "葡萄牙语"),
    _language("russian", "russisch", "ruso", "russe", "russo", "俄语"),
    _language("arabic", "arabisch", "árabe", "arabe", "arabo", "阿拉伯语"),
    _language("korean", "koreanisch", "coreano", "coréen", "coreano", "韩语"),
    _language("dutch", "niederländisch", "neerlandés", "néerlandais", "olandese", "荷兰语"),
    _language("greek", "griechisch", "griego", "grec", "greco", "希腊语"),
    _language("turkish", "türkisch", "turco", "turc", "turco", "土耳其语"),
    _language("polish", "polnisch", "polaco", "polonais", "polacco", "波兰语"),
    _language("swedish", "schwedisch", "sueco", "suédois", "svedese", "瑞典语"),
]
FOREIGN_LANGUAGES = LANGUAGE_NAMES[6:]  # none of the grammar's own six

# ---------------------------------------------------------------------------------------------------------------
# Days and times

_WEEKDAY_ROWS = (
    ("monday", "montag", "lunes", "lundi", "lunedì", "星期一"),
    ("tuesday", "dienstag", "martes", "mardi", "martedì", "星期二"),
    ("wednesday", "mittwoch", "miércoles", "mercredi", "mercoledì", "星期三"),
    ("thursday", "donnerstag", "jueves", "jeudi", "giovedì", "星期四"),
    ("friday", "freitag", "viernes", "vendredi", "venerdì", "星期五"),
    ("saturday", "samstag", "sábado", "samedi", "sabato", "星期六"),
    ("sunday", "sonntag", "domingo", "dimanche", "domenica", "星期天"),
)
WEEKDAYS = [phrase(*row) for row in _WEEKDAY_ROWS]


def _day(key: str, **forms: tuple[str, str, str, str]) -> Phrase:
    """A day reference; each language gives its (on, for, to, see you) forms."""
    return Phrase(key, {lang: dict(zip(("", "for", "to", "see"), f, strict=True)) for lang, f in forms.items()})


def _weekday(en: str, de: str, es: str, fr: str, it: str, zh: str, nxt: bool) -> Phrase:
    """A weekday ("on monday") or the next one ("next monday"), in its four uses."""
    if nxt:
        it_next = f"{it} {'prossima' if it == 'domenica' else 'prossimo'}"
        en, de, es, fr, it, zh = (f"next {en}", f"nächsten {de}", f"el próximo {es}", f"{fr} prochain", it_next,
                                  f"下 {zh}")  # fmt: skip
        on_en, on_es = en, es
    else:
        on_en, on_es = f"on {en}", f"el {es}"
    return _day(
        en.replace(" ", "_"),
        en=(on_en, f"for {en}", f"to {en}", f"see you {on_en}"),
        de=(f"{de}" if nxt else f"am {de}", f"für {de}", f"auf {de}", f"bis {de}"),
        es=(on_es, f"para {on_es}", f"a {on_es}".replace("a el ", "al "), f"hasta {on_es}"),
        fr=(fr, f"pour {fr}", f"à {fr}", f"à {fr}"),
        it=(it, f"per {it}", f"a {it}", f"ci vediamo {it}"),
        zh=(zh, zh, zh, f"{zh} 见"),
    )


TOMORROW = _day(
    "tomorrow",
    en=("tomorrow", "for tomorrow", "to tomorrow", "see you tomorrow"),
    de=("morgen", "für morgen", "auf morgen", "bis morgen"),
    es=("mañana", "para mañana", "a mañana", "hasta mañana"),
    fr=("demain", "pour demain", "à demain", "à demain"),
    it=("domani", "per domani", "a domani", "ci vediamo domani"),
    zh=("明天", "明天", "明天", "明天 见"),
)
RELATIVE_DAYS = [
    TOMORROW,
    _day(
        "day after tomorrow",
        en=("the day after tomorrow", "for the day after tomorrow", "to the day after tomorrow",
            "see you the day after tomorrow"),
        de=("übermorgen", "für übermorgen", "auf übermorgen", "bis übermorgen"),
        es=("pasado mañana", "para pasado mañana", "a pasado mañana", "hasta pasado mañana"),
        fr=("après-demain", "pour après-demain", "à après-demain", "à après-demain"),
        it=("dopodomani", "per dopodomani", "a dopodomani", "ci vediamo dopodomani"),
        zh=("后天", "后天", "后天", "后天 见"),
    ),
    _day(
        "this weekend",
        en=("this weekend", "for this weekend", "to this weekend", "see you this weekend"),
        de=("am wochenende", "fürs wochenende", "aufs wochenende", "bis zum wochenende"),
        es=("este fin de semana", "para este fin de semana", "a este fin de semana", "hasta el fin de semana"),
        fr=("ce week-end", "pour ce week-end", "à ce week-end", "à ce week-end"),
        it=("questo fine settimana", "per questo fine settimana", "a questo fine settimana",
            "ci vediamo questo fine settimana"),
        zh=("这个 周末", "这个 周末", "这个 周末", "周末 见"),
    ),
    _day(
        "tonight",
        en=("tonight", "for tonight", "to tonight", "see you tonight"),
        de=("heute abend", "für heute abend", "auf heute abend", "bis heute abend"),
        es=("esta noche", "para esta noche", "a esta noche", "hasta esta noche"),
        fr=("ce soir", "pour ce soir", "à ce soir", "à ce soir"),
        it=("stasera", "per stasera", "a stasera", "ci vediamo stasera"),
        zh=("今天 晚上", "今天 晚上", "今天 晚上", "晚上 见"),
    ),
]  # fmt: skip
TODAY = _day(
    "today",
    en=("today", "for today", "to today", "see you today"),
    de=("heute", "für heute", "auf heute", "bis heute"),
    es=("hoy", "para hoy", "a hoy", "hasta hoy"),
    fr=("aujourd'hui", "pour aujourd'hui", "à aujourd'hui", "à aujourd'hui"),
    it=("oggi", "per oggi", "a oggi", "ci vediamo oggi"),
    zh=("今天", "今天", "今天", "今天 见"),
)
DAYS = (
    RELATIVE_DAYS
    + [_weekday(*row, nxt=False) for row in _WEEKDAY_ROWS]
    + [_weekday(*row, nxt=True) for row in _WEEKDAY_ROWS]
)
DAYS_WITH_TODAY = [TODAY, *DAYS]
DATED_DAYS = [d for d in DAYS if d.key not in ("this weekend", "tonight")]  # days that take a clock time
FORECAST_DAYS = [d for d in DAYS_WITH_TODAY if d.key != "tonight"]

_FIVES = range(0, 60, 5)
# Alarms: a 24-hour clock in the morning. Wake-up: said colloquially. Day: colloquial with the part of the day.
ALARM_TIMES = [ClockTime(h, m) for h in range(5, 11) for m in (0, 5, 10, 15, 20, 30, 40, 45, 50)]
WAKE_TIMES = [ClockTime(h, m, colloquial=True) for h in range(5, 11) for m in _FIVES]
CLOCK_TIMES = [ClockTime(h, m, colloquial=True) for h in range(1, 13) for m in _FIVES]
DAY_TIMES = [
    ClockTime(h, m, colloquial=True, period=True)
    for h in (*range(6, 12), *range(13, 23))
    for m in (0, 15, 30, 45)
    if not (h == 11 and m > 30)  # 11:45 would be "quarter to twelve in the morning"
]
DINNER_TIMES = [t for t in DAY_TIMES if t.hour >= 18]
DAY_AT = [At(t) for t in DAY_TIMES]
TIMETABLE_TIMES = [ClockTime(h, m) for h in range(5, 24) for m in range(60)]

DATES = [Date(d, m) for m in range(1, 13) for d in range(1, numbers.DAYS_IN_MONTH[m - 1] + 1)]


def _minutes(*ns: int) -> list[Quantity]:
    return [Quantity(((n, "minute"),)) for n in ns]


SHORT_DURATIONS = _minutes(*range(1, 31), 35, 40, 45, 50, 55, 90) + [
    Quantity(((n, "second"),)) for n in (10, 15, 20, 30, 40, 45, 50)
]
DURATIONS = (
    SHORT_DURATIONS
    + [Quantity(((n, "hour"),)) for n in (1, 2, 3, 4)]
    + [Quantity(((1, "hour"), (m, "minute"))) for m in (10, 15, 20, 30, 45)]
    + [Quantity(((2, "hour"), (m, "minute"))) for m in (15, 30)]
)
TRAVEL_DURATIONS = (
    _minutes(*range(5, 60, 5))
    + [Quantity(((n, "hour"),)) for n in (1, 2, 3)]
    + [Quantity(((1, "hour"), (m, "minute"))) for m in (15, 20, 30, 45)]
)
DELAYS = [In(q) for q in DURATIONS if q.parts[0][1] != "second"]
NIGHTS = [Quantity(((n, "night"),)) for n in range(1, 15)]
DAYS_LEFT = [Quantity(((n, "day"),)) for n in range(2, 201)]

# When a reminder should come: a day, a clock time, a day and a time, or a delay.
WHEN = (
    DAYS
    + [At(t) for t in DAY_TIMES]
    + [Both((d, At(t))) for d in (TOMORROW, *DAYS[4:11]) for t in DAY_TIMES[::3]]
    + [In(q) for q in DURATIONS]
)

# ---------------------------------------------------------------------------------------------------------------
# Timers, reminders, calendar

TIMER_LABELS = [
    noun("pasta", N("nudeln", "f", True), ("pasta", "f"), N("pâtes", "f", True), ("pasta", "f"), "意大利面"),
    noun("rice", ("reis", "m"), ("arroz", "m"), ("riz", "m"), ("riso", "m"), "米饭"),
    noun("eggs", N("eier", "n", True), N("huevos", "m", True), N("œufs", "m", True), N("uova", "f", True), "鸡蛋"),
    noun("tea", ("tee", "m"), ("té", "m"), ("thé", "m"), ("tè", "m"), "茶"),
    noun("cake", ("kuchen", "m"), ("pastel", "m"), ("gâteau", "m"), ("torta", "f"), "蛋糕"),
    noun("pizza", ("pizza", "f"), ("pizza", "f"), ("pizza", "f"), ("pizza", "f"), "披萨"),
    noun("bread", ("brot", "n"), ("pan", "m"), ("pain", "m"), ("pane", "m"), "面包"),
    noun("laundry", ("wäsche", "f"), ("colada", "f"), ("lessive", "f"), ("bucato", "m"), "衣服"),
    noun("cookies", N("kekse", "m", True), N("galletas", "f", True), N("biscuits", "m", True),
         N("biscotti", "m", True), "饼干"),
    noun("soup", ("suppe", "f"), ("sopa", "f"), ("soupe", "f"), ("zuppa", "f"), "汤"),
    noun("potatoes", N("kartoffeln", "f", True), N("patatas", "f", True), N("pommes de terre", "f", True),
         N("patate", "f", True), "土豆"),
    noun("chicken", ("hähnchen", "n"), ("pollo", "m"), ("poulet", "m"), ("pollo", "m"), "鸡肉"),
    noun("vegetables", ("gemüse", "n"), N("verduras", "f", True), N("légumes", "m", True),
         N("verdure", "f", True), "蔬菜"),
]  # fmt: skip


def _task(en: str, de: str, es: str, fr: str, it: str, zh: str) -> Phrase:
    """A task as an infinitive phrase. German marks a separable prefix with "|" so that the zu-infinitive can be
    built: "den müll raus|bringen" -> "den müll rausbringen" / "den müll rauszubringen"."""
    head, _, verb = de.rpartition(" ")
    if "|" in verb:
        prefix, stem = verb.split("|")
        zu = f"{head} {prefix}zu{stem}".strip()
    else:
        zu = f"{head} zu {verb}".strip()
    return Phrase(en, {"en": en, "de": {"": de.replace("|", ""), "zu": zu}, "es": es, "fr": fr, "it": it, "zh": zh})


TASKS = [
    _task("call the dentist", "den zahnarzt an|rufen", "llamar al dentista", "appeler le dentiste",
          "chiamare il dentista", "给 牙医 打 电话"),
    _task("water the plants", "die pflanzen gießen", "regar las plantas", "arroser les plantes",
          "annaffiare le piante", "给 植物 浇水"),
    _task("take out the trash", "den müll raus|bringen", "sacar la basura", "sortir la poubelle",
          "portare fuori la spazzatura", "倒 垃圾"),
    _task("buy milk", "milch kaufen", "comprar leche", "acheter du lait", "comprare il latte", "买 牛奶"),
    _task("pay the rent", "die miete bezahlen", "pagar el alquiler", "payer le loyer", "pagare l'affitto", "交 房租"),
    _task("feed the cat", "die katze füttern", "dar de comer al gato", "nourrir le chat",
          "dare da mangiare al gatto", "喂 猫"),
    _task("walk the dog", "mit dem hund raus|gehen", "sacar al perro", "promener le chien", "portare fuori il cane",
          "遛 狗"),
    _task("pick up the package", "das paket ab|holen", "recoger el paquete", "récupérer le colis",
          "ritirare il pacco", "取 包裹"),
    _task("book the tickets", "die tickets buchen", "reservar las entradas", "réserver les billets",
          "prenotare i biglietti", "订 票"),
    _task("take the medicine", "die medikamente nehmen", "tomar la medicina", "prendre les médicaments",
          "prendere le medicine", "吃 药"),
    _task("charge the phone", "das handy auf|laden", "cargar el móvil", "charger le téléphone",
          "caricare il telefono", "给 手机 充电"),
    _task("send the invoice", "die rechnung schicken", "enviar la factura", "envoyer la facture",
          "inviare la fattura", "发 发票"),
    _task("clean the kitchen", "die küche putzen", "limpiar la cocina", "nettoyer la cuisine", "pulire la cucina",
          "打扫 厨房"),
    _task("hang up the laundry", "die wäsche auf|hängen", "tender la ropa", "étendre le linge",
          "stendere il bucato", "晾 衣服"),
    _task("buy bread", "brot kaufen", "comprar pan", "acheter du pain", "comprare il pane", "买 面包"),
    _task("return the library books", "die bücher in die bibliothek zurück|bringen",
          "devolver los libros a la biblioteca", "rendre les livres à la bibliothèque",
          "restituire i libri alla biblioteca", "把 书 还 给 图书馆"),
    _task("call grandma", "oma an|rufen", "llamar a la abuela", "appeler mamie", "chiamare la nonna",
          "给 奶奶 打 电话"),
    _task("buy a birthday present", "ein geburtstagsgeschenk kaufen", "comprar un regalo de cumpleaños",
          "acheter un cadeau d'anniversaire", "comprare un regalo di compleanno", "买 生日 礼物"),
    _task("lock the car", "das auto ab|schließen", "cerrar el coche con llave", "fermer la voiture à clé",
          "chiudere la macchina a chiave", "锁 车"),
    _task("fill up the car", "tanken", "echar gasolina", "faire le plein", "fare benzina", "给 车 加油"),
    _task("make a doctor's appointment", "einen arzttermin machen", "pedir cita con el médico",
          "prendre rendez-vous chez le médecin", "prendere un appuntamento dal medico", "预约 医生"),
    _task("turn off the oven", "den backofen aus|schalten", "apagar el horno", "éteindre le four",
          "spegnere il forno", "关 烤箱"),
    _task("take an umbrella", "einen regenschirm mit|nehmen", "llevar un paraguas", "prendre un parapluie",
          "prendere l'ombrello", "带 伞"),
    _task("defrost the chicken", "das hähnchen auf|tauen", "descongelar el pollo", "décongeler le poulet",
          "scongelare il pollo", "解冻 鸡肉"),
]  # fmt: skip

EVENTS = [
    noun("meeting", ("besprechung", "f"), ("reunión", "f"), ("réunion", "f"), ("riunione", "f"), "会议"),
    noun("dentist appointment", ("zahnarzttermin", "m"), ("cita con el dentista", "f"),
         ("rendez-vous chez le dentiste", "m"), ("appuntamento dal dentista", "m"), "牙医 预约"),
    noun("doctor's appointment", ("arzttermin", "m"), ("cita con el médico", "f"),
         ("rendez-vous chez le médecin", "m"), ("appuntamento dal medico", "m"), "医生 预约"),
    noun("lunch", ("mittagessen", "n"), ("comida", "f"), ("déjeuner", "m"), ("pranzo", "m"), "午饭"),
    noun("dinner", ("abendessen", "n"), ("cena", "f"), ("dîner", "m"), ("cena", "f"), "晚饭"),
    noun("call", ("telefonat", "n"), ("llamada", "f"), ("appel", "m"), ("chiamata", "f"), "电话"),
    noun("video call", ("videoanruf", "m"), ("videollamada", "f"), ("appel vidéo", "m"), ("videochiamata", "f"),
         "视频 通话"),
    noun("job interview", ("vorstellungsgespräch", "n"), ("entrevista de trabajo", "f"),
         ("entretien d'embauche", "m"), ("colloquio di lavoro", "m"), "面试"),
    noun("coffee", ("kaffee", "m"), ("café", "m"), ("café", "m"), ("caffè", "m"), "咖啡 约会"),
    noun("team meeting", ("teammeeting", "n"), ("reunión de equipo", "f"), ("réunion d'équipe", "f"),
         ("riunione di squadra", "f"), "团队 会议"),
    noun("yoga class", ("yogakurs", "m"), ("clase de yoga", "f"), ("cours de yoga", "m"), ("lezione di yoga", "f"),
         "瑜伽 课"),
    noun("piano lesson", ("klavierstunde", "f"), ("clase de piano", "f"), ("cours de piano", "m"),
         ("lezione di piano", "f"), "钢琴 课"),
    noun("tennis match", ("tennismatch", "n"), ("partido de tenis", "m"), ("match de tennis", "m"),
         ("partita di tennis", "f"), "网球 比赛"),
]  # fmt: skip

HOLIDAYS = [  # how many days "until" it; zh gives the holiday's name
    phrase("until christmas", "bis weihnachten", "para navidad", "avant noël", "a natale", "圣诞节"),
    phrase("until new year's eve", "bis silvester", "para nochevieja", "avant la saint-sylvestre",
           "a san silvestro", "跨年夜"),
    phrase("until easter", "bis ostern", "para pascua", "avant pâques", "a pasqua", "复活节"),
    phrase("until halloween", "bis halloween", "para halloween", "avant halloween", "a halloween", "万圣节"),
    phrase("until valentine's day", "bis zum valentinstag", "para san valentín", "avant la saint-valentin",
           "a san valentino", "情人节"),
    phrase("until chinese new year", "bis zum chinesischen neujahrsfest", "para el año nuevo chino",
           "avant le nouvel an chinois", "al capodanno cinese", "春节"),
    phrase("until the summer holidays", "bis zu den sommerferien", "para las vacaciones de verano",
           "avant les vacances d'été", "alle vacanze estive", "暑假"),
    phrase("until my birthday", "bis zu meinem geburtstag", "para mi cumpleaños", "avant mon anniversaire",
           "al mio compleanno", "我 的 生日"),
    phrase("until the wedding", "bis zur hochzeit", "para la boda", "avant le mariage", "al matrimonio", "婚礼"),
    phrase("until our vacation", "bis zu unserem urlaub", "para nuestras vacaciones", "avant nos vacances",
           "alle nostre vacanze", "我们 的 假期"),
]  # fmt: skip


def _month(m: int) -> Phrase:
    """A month with how many days it has (February in a common year); hows "" and "days"."""
    days = 28 if m == 2 else numbers.DAYS_IN_MONTH[m - 1]
    forms = {
        lang: {"": numbers.MONTHS[lang][m - 1], "days": numbers.quantity(lang, days, numbers.UNITS["day"][lang])}
        for lang in _LANGS
    }
    return Phrase(numbers.MONTHS["en"][m - 1], forms)


MONTHS = [_month(m) for m in range(1, 13)]

# ---------------------------------------------------------------------------------------------------------------
# Weather

CONDITIONS = [
    phrase("sunny", "sonnig", "soleado", "ensoleillé", "soleggiato", "晴朗"),
    phrase("cloudy", "bewölkt", "nublado", "nuageux", "nuvoloso", "多云"),
    phrase("rainy", "regnerisch", "lluvioso", "pluvieux", "piovoso", "有 雨"),
    phrase("windy", "windig", "ventoso", "venteux", "ventoso", "有 风"),
    phrase("stormy", "stürmisch", "tormentoso", "orageux", "burrascoso", "有 暴风雨"),
    phrase("partly cloudy", "teilweise bewölkt", "parcialmente nublado", "partiellement nuageux",
           "parzialmente nuvoloso", "局部 多云"),
    phrase("mild", "mild", "templado", "doux", "mite", "温和"),
    phrase("humid", "schwül", "húmedo", "humide", "umido", "潮湿"),
]  # fmt: skip
PRECIPITATION = [  # en "will it ...", de "... es", es/fr "va a ...", it future, zh verb
    phrase("rain", "regnet", "llover", "pleuvoir", "pioverà", "下雨"),
    phrase("snow", "schneit", "nevar", "neiger", "nevicherà", "下雪"),
    phrase("hail", "hagelt", "granizar", "grêler", "grandinerà", "下 冰雹"),
]
HIGHS = [Temperature(t) for t in range(-10, 41)]
ROOM_TEMPERATURES = [Temperature(t) for t in range(16, 29)]
OVEN_TEMPERATURES = [Temperature(t) for t in range(150, 255, 5)]

# ---------------------------------------------------------------------------------------------------------------
# Messages


def _message(en: str, de: str, es: str, fr: str, it: str, zh: str) -> Phrase:
    """A message as reported speech; de is the subordinate clause after "dass" (verb last)."""
    return phrase(en, de, es, fr, it, zh)


MESSAGES = [
    _message("i'm running late", "ich mich verspäte", "llego tarde", "je suis en retard", "sono in ritardo",
             "我 要 迟到 了"),
    _message("i'm on my way", "ich unterwegs bin", "estoy de camino", "je suis en route", "sto arrivando",
             "我 在 路上 了"),
    _message("i'll call back later", "ich später zurückrufe", "volveré a llamar más tarde",
             "je rappellerai plus tard", "richiamerò più tardi", "我 晚点 回 电话"),
    _message("i'm at home", "ich zu hause bin", "estoy en casa", "je suis à la maison", "sono a casa", "我 在 家"),
    _message("dinner is ready", "das abendessen fertig ist", "la cena está lista", "le dîner est prêt",
             "la cena è pronta", "晚饭 做好 了"),
    _message("the meeting was canceled", "die besprechung abgesagt wurde", "se ha cancelado la reunión",
             "la réunion a été annulée", "la riunione è stata annullata", "会议 取消 了"),
    _message("i forgot my keys", "ich meine schlüssel vergessen habe", "se me han olvidado las llaves",
             "j'ai oublié mes clés", "ho dimenticato le chiavi", "我 忘 带 钥匙 了"),
    _message("i'm at the supermarket", "ich im supermarkt bin", "estoy en el supermercado",
             "je suis au supermarché", "sono al supermercato", "我 在 超市"),
    _message("i'll pick up the kids", "ich die kinder abhole", "yo recojo a los niños",
             "je vais chercher les enfants", "vado io a prendere i bambini", "我 去 接 孩子"),
    _message("i'm stuck in traffic", "ich im stau stehe", "estoy en un atasco", "je suis dans les bouchons",
             "sono nel traffico", "我 堵车 了"),
    _message("the train is delayed", "der zug verspätung hat", "el tren va con retraso", "le train a du retard",
             "il treno è in ritardo", "火车 晚点 了"),
    _message("i'll bring bread", "ich brot mitbringe", "llevo pan", "j'apporte du pain", "porto il pane",
             "我 会 带 面包"),
    _message("i'm leaving the office now", "ich jetzt aus dem büro gehe", "ya salgo de la oficina",
             "je quitte le bureau maintenant", "sto uscendo adesso dall'ufficio", "我 现在 离开 办公室"),
    _message("everything is fine", "alles in ordnung ist", "todo está bien", "tout va bien", "va tutto bene",
             "一切 都 好"),
    _message("i'll be home late", "ich spät nach hause komme", "llegaré tarde a casa", "je rentrerai tard",
             "tornerò tardi a casa", "我 会 晚点 回家"),
    _message("i bought the tickets", "ich die tickets gekauft habe", "he comprado las entradas",
             "j'ai acheté les billets", "ho comprato i biglietti", "我 买 好 票 了"),
    _message("the package has arrived", "das paket angekommen ist", "ha llegado el paquete", "le colis est arrivé",
             "il pacco è arrivato", "包裹 到 了"),
]  # fmt: skip

TOPICS = [
    noun("project", ("projekt", "n"), ("proyecto", "m"), ("projet", "m"), ("progetto", "m"), "项目"),
    noun("budget", ("budget", "n"), ("presupuesto", "m"), ("budget", "m"), ("budget", "m"), "预算"),
    noun("trip", ("reise", "f"), ("viaje", "m"), ("voyage", "m"), ("viaggio", "m"), "旅行"),
    noun("report", ("bericht", "m"), ("informe", "m"), ("rapport", "m"), ("relazione", "f"), "报告"),
    noun("contract", ("vertrag", "m"), ("contrato", "m"), ("contrat", "m"), ("contratto", "m"), "合同"),
    noun("invoice", ("rechnung", "f"), ("factura", "f"), ("facture", "f"), ("fattura", "f"), "发票"),
    noun("presentation", ("präsentation", "f"), ("presentación", "f"), ("présentation", "f"),
         ("presentazione", "f"), "演示"),
    noun("party", ("party", "f"), ("fiesta", "f"), ("fête", "f"), ("festa", "f"), "聚会"),
    noun("schedule", ("zeitplan", "m"), ("horario", "m"), ("planning", "m"), ("programma", "m"), "日程"),
    noun("interview", ("vorstellungsgespräch", "n"), ("entrevista", "f"), ("entretien", "m"), ("colloquio", "m"),
         "面试"),
    noun("order", ("bestellung", "f"), ("pedido", "m"), ("commande", "f"), ("ordine", "m"), "订单"),
    noun("apartment", ("wohnung", "f"), ("piso", "m"), ("appartement", "m"), ("appartamento", "m"), "公寓"),
]  # fmt: skip

GREETINGS = [
    phrase("good morning", "guten morgen", "buenos días", "bonjour", "buongiorno", "早上 好"),
    phrase("good evening", "guten abend", "buenas noches", "bonsoir", "buonasera", "晚上 好"),
    phrase("hello", "hallo", "hola", "salut", "ciao", "你好"),
]
WISHES = [
    phrase("happy birthday", "alles gute zum geburtstag", "feliz cumpleaños", "joyeux anniversaire",
           "buon compleanno", "生日 快乐"),
    phrase("good night", "gute nacht", "buenas noches", "bonne nuit", "buonanotte", "晚安"),
    phrase("happy new year", "frohes neues jahr", "feliz año nuevo", "bonne année", "buon anno", "新年 快乐"),
    phrase("merry christmas", "frohe weihnachten", "feliz navidad", "joyeux noël", "buon natale", "圣诞 快乐"),
    phrase("happy easter", "frohe ostern", "feliz pascua", "joyeuses pâques", "buona pasqua", "复活节 快乐"),
    phrase("good luck", "viel glück", "buena suerte", "bonne chance", "buona fortuna", "好运"),
]  # fmt: skip

# ---------------------------------------------------------------------------------------------------------------
# Food and shopping


def _things(en: tuple[str, str], de: tuple, es: tuple, fr: tuple, it: tuple, zh: tuple[str, str]) -> dict:
    """Forms of a countable thing; zh is (classifier, noun)."""
    return {"en": numbers.Unit(*en), "de": numbers.Unit(*de), "es": numbers.Unit(*es), "fr": numbers.Unit(*fr),
            "it": numbers.Unit(*it), "zh": numbers.Unit(zh[1], zh[1], "m", zh[0])}  # fmt: skip


COUNTABLE_FOODS = {
    "apple": _things(("apple", "apples"), ("apfel", "äpfel"), ("manzana", "manzanas", "f"), ("pomme", "pommes", "f"),
                     ("mela", "mele", "f"), ("个", "苹果")),
    "banana": _things(("banana", "bananas"), ("banane", "bananen", "f"), ("plátano", "plátanos"),
                      ("banane", "bananes", "f"), ("banana", "banane", "f"), ("根", "香蕉")),
    "egg": _things(("egg", "eggs"), ("ei", "eier", "n"), ("huevo", "huevos"), ("œuf", "œufs"), ("uovo", "uova"),
                   ("个", "鸡蛋")),
    "lemon": _things(("lemon", "lemons"), ("zitrone", "zitronen", "f"), ("limón", "limones"),
                     ("citron", "citrons"), ("limone", "limoni"), ("个", "柠檬")),
    "tomato": _things(("tomato", "tomatoes"), ("tomate", "tomaten", "f"), ("tomate", "tomates"),
                      ("tomate", "tomates", "f"), ("pomodoro", "pomodori"), ("个", "西红柿")),
    "onion": _things(("onion", "onions"), ("zwiebel", "zwiebeln", "f"), ("cebolla", "cebollas", "f"),
                     ("oignon", "oignons"), ("cipolla", "cipolle", "f"), ("个", "洋葱")),
    "potato": _things(("potato", "potatoes"), ("kartoffel", "kartoffeln", "f"), ("patata", "patatas", "f"),
                      ("pomme de terre", "pommes de terre", "f"), ("patata", "patate", "f"), ("个", "土豆")),
    "orange": _things(("orange", "oranges"), ("orange", "orangen", "f"), ("naranja", "naranjas", "f"),
                      ("orange", "oranges", "f"), ("arancia", "arance", "f"), ("个", "橙子")),
    "avocado": _things(("avocado", "avocados"), ("avocado", "avocados", "f"), ("aguacate", "aguacates"),
                       ("avocat", "avocats"), ("avocado", "avocado"), ("个", "牛油果")),
    "carrot": _things(("carrot", "carrots"), ("karotte", "karotten", "f"), ("zanahoria", "zanahorias", "f"),
                      ("carotte", "carottes", "f"), ("carota", "carote", "f"), ("根", "胡萝卜")),
    "cucumber": _things(("cucumber", "cucumbers"), ("gurke", "gurken", "f"), ("pepino", "pepinos"),
                        ("concombre", "concombres"), ("cetriolo", "cetrioli"), ("根", "黄瓜")),
    "bottle of water": _things(("bottle of water", "bottles of water"), ("flasche wasser", "flaschen wasser", "f"),
                               ("botella de agua", "botellas de agua", "f"),
                               ("bouteille d'eau", "bouteilles d'eau", "f"),
                               ("bottiglia d'acqua", "bottiglie d'acqua", "f"), ("瓶", "水")),
}  # fmt: skip
FOOD_COUNTS = [Count(n, thing, units) for thing, units in COUNTABLE_FOODS.items() for n in range(2, 13)]

GROCERIES = [
    noun("milk", ("milch", "f"), ("leche", "f"), ("lait", "m"), ("latte", "m"), "牛奶"),
    noun("bread", ("brot", "n"), ("pan", "m"), ("pain", "m"), ("pane", "m"), "面包"),
    noun("butter", ("butter", "f"), ("mantequilla", "f"), ("beurre", "m"), ("burro", "m"), "黄油"),
    noun("cheese", ("käse", "m"), ("queso", "m"), ("fromage", "m"), ("formaggio", "m"), "奶酪"),
    noun("coffee", ("kaffee", "m"), ("café", "m"), ("café", "m"), ("caffè", "m"), "咖啡"),
    noun("rice", ("reis", "m"), ("arroz", "m"), ("riz", "m"), ("riso", "m"), "大米"),
    noun("sugar", ("zucker", "m"), ("azúcar", "m"), ("sucre", "m"), ("zucchero", "m"), "糖"),
    noun("flour", ("mehl", "n"), ("harina", "f"), ("farine", "f"), ("farina", "f"), "面粉"),
    noun("olive oil", ("olivenöl", "n"), ("aceite de oliva", "m"), ("huile d'olive", "f"), ("olio d'oliva", "m"),
         "橄榄油"),
    noun("yogurt", ("joghurt", "m"), ("yogur", "m"), ("yaourt", "m"), ("yogurt", "m"), "酸奶"),
    noun("honey", ("honig", "m"), ("miel", "f"), ("miel", "m"), ("miele", "m"), "蜂蜜"),
    noun("pasta", N("nudeln", "f", True), ("pasta", "f"), N("pâtes", "f", True), ("pasta", "f"), "意大利面"),
    noun("salt", ("salz", "n"), ("sal", "f"), ("sel", "m"), ("sale", "m"), "盐"),
    noun("tea", ("tee", "m"), ("té", "m"), ("thé", "m"), ("tè", "m"), "茶叶"),
    noun("orange juice", ("orangensaft", "m"), ("zumo de naranja", "m"), ("jus d'orange", "m"),
         ("succo d'arancia", "m"), "橙汁"),
    noun("ham", ("schinken", "m"), ("jamón", "m"), ("jambon", "m"), ("prosciutto", "m"), "火腿"),
    noun("chocolate", ("schokolade", "f"), ("chocolate", "m"), ("chocolat", "m"), ("cioccolato", "m"), "巧克力"),
    noun("toilet paper", ("toilettenpapier", "n"), ("papel higiénico", "m"), ("papier toilette", "m"),
         ("carta igienica", "f"), "卫生纸"),
    noun("dish soap", ("spülmittel", "n"), ("lavavajillas", "m"), ("liquide vaisselle", "m"),
         ("detersivo per i piatti", "m"), "洗洁精"),
    noun("cereal", ("müsli", "n"), N("cereales", "m", True), N("céréales", "f", True), N("cereali", "m", True),
         "麦片"),
]  # fmt: skip

# Words to ask about ("how do you say apple in japanese").
WORDS = [Phrase(key, {lang: units[lang].singular for lang in _LANGS}) for key, units in COUNTABLE_FOODS.items()]
WORDS += [c for c in COLORS if c.key not in ("orange", "turquoise")] + GROCERIES[:8]

# ---------------------------------------------------------------------------------------------------------------
# Numbers

_rng = random.Random(20240601)  # fixed: the lexicon must be the same in every process
PHONE_NUMBERS = [Digits("0" + "".join(_rng.choice("0123456789") for _ in range(9))) for _ in range(2000)]
PROBLEMS = (
    [Problem(a, "+", b) for a in range(0, 101, 1) for b in range(1, 21)]
    + [Problem(a, "+", b) for a in range(150, 2001, 50) for b in range(10, 101, 10)]
    + [Problem(a, "-", b) for a in range(10, 101) for b in range(1, 11)]
    + [Problem(a, "*", b) for a in range(1, 13) for b in range(1, 13)]
    + [Problem(a * b, "/", b) for a in range(1, 13) for b in range(2, 11)]
)
PRICES = [Price(e, c) for e in range(1, 151) for c in (0, 0, 50, 20, 90, 99, 75, 25)]
PRICES = list({p.key: p for p in PRICES}.values())
PERCENTAGES = [Percent(p) for p in range(5, 100, 5)]
LEVELS = [Number(n) for n in range(1, 11)]
PLATFORMS = [Number(n) for n in range(1, 21)]
SCORES = [Number(n) for n in range(0, 8)]
AGES = [Quantity(((n, "year_old"),)) for n in range(1, 100)]
TURNING = [Number(n) for n in range(2, 100)]
_KILOMETERS = (*range(10, 100, 5), *range(100, 1000, 10), *range(1000, 10001, 50))
DISTANCES = [Quantity(((n, "kilometer"),)) for n in _KILOMETERS]
PARTY_SIZES = [Quantity(((n, "person"),)) for n in range(2, 13)]
MESSAGE_COUNTS = [Quantity(((n, "new_message"),)) for n in range(1, 13)]
