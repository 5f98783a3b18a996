"""Calibration texts for static int8 export (`openvino-int8`): seed-corpus chunks, fixed.

Static quantisation measures activation ranges on sample inputs. They are 48 chunks of the five
seed articles (corpus/), as the indexer embeds them (title + passage), evenly sampled: the
export is then a function of the model alone, the same whichever corpus is indexed first.
(Two exports calibrated on two different corpora differed by a mean cosine of 0.9965, as much
as int8 differs from fp32.) Generated once from corpus/; never a hub data set.
"""

TEXTS: tuple[str, ...] = (
    (
        "Cluster numérique régional\xa0: Jour 1 de l'unification\nCluster numérique "
        "régional\xa0: Jour 1 de l'unification\n\nÀ l'occasion du Digiworld Summit, "
        "le Conseil régional et les chefs d'entreprise du secteur numérique en "
        'Languedoc-Roussillon ont annoncé officiellement leur rassemblement, le '
        '19 novembre. 240 000 € seraient consacrés à la mise en route de ce '
        'nouveau cluster en 2015.\nLes principaux acteurs de la filière numérique '
        "en région se regroupent pour la création d'un grand cluster"
    ),
    (
        "Cluster numérique régional\xa0: Jour 1 de l'unification\nComme Objectif "
        "Languedoc-Roussillon l'annonçait lundi 17 novembre, les acteurs du "
        "numérique en région se rassemblent au sein d'un seul et grand cluster. "
        'Profitant du Digiworld Summit, à Montpellier, et peu après la '
        'labellisation French Tech, le Conseil régional a provoqué une '
        'conférence de presse pour annoncer ce rassemblement le 19 novembre.'
    ),
    (
        "Cluster numérique régional\xa0: Jour 1 de l'unification\nPour l'heure, si "
        'la volonté de Pix LR, Novae LR et MCC (Media Cloud Cluster) de '
        'fusionner est annoncée, la structuration de la gouvernance du grand '
        "cluster reste encore à négocier. La création juridique du cluster n'est "
        "d'ailleurs pas encore actée et pourrait l'être d'ici plusieurs "
        'semaines.\n\n"Comme dans toutes les fusions d\'entreprises, elle sera '
        'suivie d\'une restructuration", fait remarquer Alain Molinié, président '
        "de Media Cloud Cluster et P-dg d'AwoX."
    ),
    (
        "Cluster numérique régional\xa0: Jour 1 de l'unification\nSi Hélène Giral, "
        "vice-présidente du Conseil régional, n'a pas donné de détails sur le "
        "plan de financement prévu pour ce cluster, l'élue a rappelé "
        "l'investissement courant de 2 M€\xa0 injecté dans la filière numérique. "
        "Selon nos informations, des montants auraient d'ores et déjà été "
        'discutés début novembre et pourraient atteindre 240 000 € en 2015, dont '
        '60 % de fonds européens, spécifiquement sur ce cluster. Un chiffre à '
        "prendre avec des pincettes puisque le budget régional n'a pas encore "
        'été voté.'
    ),
    (
        'Cluster numérique régional\xa0: Jour 1 de l\'unification\n"Le label French '
        'Tech a pour vocation de rassembler et structurer les écosystèmes de '
        'France pour rayonner à l\'international", rappelle Alain Molinié. Au '
        'niveau local, nous voulons faire de même sous une seule entité qui '
        'représente les forces vives du numérique régional."'
    ),
    (
        "Cluster numérique régional\xa0: Jour 1 de l'unification\nPilote industriel "
        "du domaine d'activité stratégique de la 3S (Stratégie de spécialisation "
        'intelligente), Pierre Deniset a précisé : "Ce futur cluster va se caler '
        "sur les grilles d'adressage des fonds structurels européens dans le "
        "cadre de la 3S. L'objectif est de dynamiser les financements privés "
        'avec les partenaires industriels (IBM, banques, sponsors...)."'
    ),
    (
        "Cluster numérique régional\xa0: Jour 1 de l'unification\nKatia Vidic, "
        'fondatrice de Nelis, a insisté sur son expérience de "gouvernance '
        'collective au sein de la mobilisation French Tech" : "Aujourd\'hui, la '
        'French Tech doit aller au-delà des entreprises numériques et concerner '
        'toutes les sociétés du territoire."\n\nYsis Percq'
    ),
    (
        'Ces lieux qui changent l’innovation en France\nLouvre Lens ValléeA '
        'l’heure du métaverse, du télétravail et de l’intelligence artificielle, '
        'les lieux physiques pour innover sont-ils encore utiles ? Alors que les '
        'échanges se dématérialisent et se mondialisent, l’innovation, sous des '
        'formes toujours plus variées, reste présente et dynamique sur '
        'l’ensemble du territoire français, mobilise des combinaisons infinies '
        'd’acteurs et s’incarne dans des lieux de plus en plus atypiques.'
    ),
    (
        'Ces lieux qui changent l’innovation en France\n« On a pris un parti pris '
        'de choix pour faire cette promotion, aller dans la machinerie, '
        'dialoguer avec les responsables de sites, indique Jean-Louis Meynet, '
        'directeur général de JLM Conseil. Les lieux choisis prétendent '
        'agglomérer des acteurs et produire une qualité, une profondeur de '
        'services différents. Ils sont toujours des objets en corrélation forte '
        'avec les collectivités. C’est un élément fondamental voire même le lieu '
        'devient un élément de restructuration d’un site.'
    ),
    (
        'Ces lieux qui changent l’innovation en France\nPromouvoir l’innovation '
        'locale et initier le débat\n\nEn partant du terrain, France urbaine, la '
        'Banque des Territoires, le groupe Patriarche et JLM Conseil ont '
        'souhaité, à travers cette étude :'
    ),
    (
        'Ces lieux qui changent l’innovation en France\n• Initier un débat sur le '
        'rôle, l’organisation, les services, les modèles d’exploitation, les '
        'modalités d’ancrage immobilier et territorial de ces lieux qui changent '
        'l’innovation en France.'
    ),
    (
        'Ces lieux qui changent l’innovation en France\nParmi plus de 300 lieux '
        'identifiés, 25 initiatives emblématiques ont été sélectionnées en '
        'raison de leur représentativité des nouvelles plateformes '
        'collaboratives des territoires. Cette sélection est une première étape '
        'de la démarche qui a vocation à être actualisée tous les deux ans, en '
        'continuant d’enrichir le dialogue et l’analyse des facteurs clés de '
        'réussite.'
    ),
    (
        'Ces lieux qui changent l’innovation en France\nLes Ateliers des Capucins '
        'à Brest, Bliiida à Metz, La Cantine Numérique à Nantes, Cisam à '
        'Marseille, Euratechnologies à Lille, La Cité à Toulouse, Hévéa à Lyon '
        'ou encore MoHo à Caen sont parmi les initiatives valorisées dans cette '
        'étude. Tous ces lieux, qui ont en commun de vouloir participer à la '
        'dynamisation des écosystèmes, ont eu à traverser la crise sanitaire et '
        'puisent des ressources dans la qualité des communautés locales.« Le '
        'lieux est un outil par une finalité ».'
    ),
    (
        'Ces lieux qui changent l’innovation en France\nBasée dans l’ancien '
        'bassin minier désindustrialisé de la région lensoise, le Louvre Vallée '
        'Lens “est un véritable Ovni”, assure Margherita Balzerani, directrice '
        'du site. Le bassin minier fête ses dix ans au label Unesco et cette '
        'locomotive du Louvre Lens est un Louvre autrement, car il a été désiré '
        'par les citoyens. Nous sommes dépendants de ce lieu parce qu’on l’a '
        'dans notre ADN. Les politiques ont été clairvoyant en transformant le '
        'territoire par la culture”, assure-t-elle.'
    ),
    (
        'Ces lieux qui changent l’innovation en France\nLe Louvre Lens Vallée en '
        'quelques chiffres :\n\n  • 3000 m2 de bâtiment\n  • 160 entreprises '
        'partenaires\n  • 79 projets accompagnés depuis 2013\n\nDe nombreux '
        'services autour du patrimoine\xa0:'
    ),
    (
        'Ces lieux qui changent l’innovation en France\n“On se projette également '
        'dans le vert, insiste Margherita Balzerani. On est dans une relation '
        'avec les citoyens, dans l’observation des usages, en intelligence '
        'collective car on travaille sur les besoins du territoire. Le centre de '
        'conservation du Louvre nous parle des mousses pour le transport des '
        'œuvres. On réfléchit à d’autres solutions avec les territoires. On '
        'travaille aussi sur un projet créatif où on a récupéré tous les '
        'gisements de plastiques.'
    ),
    (
        'LORnTECH Accélérateur\nLORnTECH Accélérateur'
    ),
    (
        'LORnTECH Accélérateur\nLORnTECH Stimulateur a pour objectif de libérer '
        'les «\xa0énergies créatives\xa0» afin de favoriser l’émergence d’idées et de '
        'concepts, portés par des talents et des créatifs en vue de les '
        'transformer en projets pertinents.\xa0Une démarche qui implique une '
        'mobilisation de l’ensemble des acteurs afin d’accompagner les\xa0porteurs '
        'd’idées tout au long du processus «\xa0créatif\xa0».'
    ),
    (
        'LORnTECH Accélérateur\nLe fait d’être présents à l’origine du concept '
        'permet également à ces partenaires de mieux connaître tant le projet '
        'que le créateur, et facilitera son accompagnement ultérieur.'
    ),
    (
        'LORnTECH Accélérateur\ndonner ensuite au porteur du projet les moyens de '
        'le développer via LORnTECH Accélérateur (voir article LORnTECH '
        'Accélérateur).'
    ),
    (
        'LORnTECH Accélérateur\nLe pole métropolitain du sillon lorrain, est une '
        'métropole de projets dont la légitimité se trouve justement dans sa '
        'capacité à se mobiliser pour fédérer des initiatives bénéfiques pour '
        'l’ensemble de nos territoires et pour les territoires associés. Il en '
        'est ainsi pour LORnTECH qui repose sur plus d’un an de travail, pour le '
        'compte et avec les entreprises du numérique Lorraines, luxembourgeoises '
        'et sarroises. Le sillon Lorrain a en cela un rôle d’impulseur.'
    ),
    (
        'LORnTECH Accélérateur\nSi le label n’est pas accordé, une dynamique est '
        'amorcée, donc il faut avancer\xa0?'
    ),
    (
        'LORnTECH Accélérateur\nLa dynamique est là désormais, et quoi qu’il '
        'arrive, il faut tout mettre en œuvre pour qu’elle ne s’essouffle pas, '
        'c’est pourquoi deux chargés de mission sont chargés d’animer ce réseau '
        'nouveau pour le compte du sillon lorrain.'
    ),
    (
        'LORnTECH Accélérateur\nLe périmètre du numérique est toujours difficile '
        'à définir, car il touche tous les domaines de l’économie que ce soit la '
        'santé, la culture, et tous les secteurs de l’industrie. Néanmoins, on '
        'estime que cette économie numérique représente plus de 10\xa0000 emplois '
        'et plus de 2\xa0000 entreprises sur les seuls territoires du Sillon '
        'Lorrain. La Lorraine, avec le projet LORnTECH, a donc toutes les cartes '
        'en main pour devenir l’un des territoires phares du numérique en '
        'France.'
    ),
    (
        'LORnTECH Accélérateur\nLe projet doit reposer sur l’écosystème '
        'entrepreneurial du territoire, sur sa taille et son dynamisme, qu’il '
        's’agit d’amplifier. Par ailleurs, la variété de cet écosystème, sa '
        'densité et la fluidité de son fonctionnement sont des points clés. '
        'Aucune des agglomérations du Sillon Lorrain ne pouvait candidater '
        'seule, car French Tech favorise les écosystèmes justifiant d’une masse '
        'critique suffisante.'
    ),
    (
        'LORnTECH Accélérateur\nC’est dans ce but que la Région a notamment voté '
        'la création d’un fonds numérique de 7 millions d’euros qui sera géré '
        'par l’ILP SADEPAR pour la capitalisation des entreprises à fort '
        'potentiel de croissance.'
    ),
    (
        'LORnTECH Accélérateur\nLaurent Hénart (© DR)Nancy dispose de tous les '
        'atouts pour renforcer sa place de territoire numérique : une ville '
        'jeune, dotée d’une université et de laboratoires de recherche '
        'performants et reconnus, avec de nombreuses entreprises dans le secteur '
        'du numérique qui concernent 7\xa0000 emplois dans le Grand Nancy.'
    ),
    (
        'LORnTECH Accélérateur\nCes locaux viendront en complément de l’espace '
        'totem LORnTECH nancéien que nous appelons la «Source», ouvert sur le '
        'tout nouveau technopôle Renaissance depuis déjà un an. C’est dans cet '
        'esprit qu’avec nos partenaires de Metz, Épinal et Thionville, nous '
        'mettons toutes les chances de notre côté pour que notre projet soit '
        'retenu et nous permette de reconnaître à Nancy et au Sillon lorrain sa '
        'légitimité de territoire innovant et tourné vers l’avenir.'
    ),
    (
        'LORnTECH Accélérateur\n« Pour générer des échanges et de l’émulation, '
        'nous organisons régulièrement des événements qui permettent à nos 60 '
        'membres de se retrouver. L’organisation d’événements est notre '
        'principal levier de développement\xa0» explique Bruno Martin, le '
        'co-fondateur de La Poudrière, un espace de coworking situé à Nancy. '
        'L’endroit ne manque pas de projets. L’ambition est de professionnaliser '
        'le lieu en accueillant un «\xa0concierge\xa0».'
    ),
    (
        'LORnTECH Accélérateur\nComme à Nancy, au-delà d’offrir différents '
        'services permettant de travailler (bureau, connexion internet, salles '
        'de réunion…), l’ambition est de se positionner comme un espace '
        'd’échanges, de partage et d’expérimentations. «\xa0Nous avons commencé à '
        'organiser des conférences et des ateliers.'
    ),
    (
        'Tops et flops du Louvre-Lens (2/4)\xa0: deuxième étage de la fusée, un '
        'cluster numérique\nTops et flops du Louvre-Lens (2/4)\xa0: deuxième étage '
        'de la fusée, un cluster numérique'
    ),
    (
        'Tops et flops du Louvre-Lens (2/4)\xa0: deuxième étage de la fusée, un '
        'cluster numérique\nLe site abritera sur 3.000 mètres carrés un '
        "incubateur, un hôtel d'entreprises et un Fab Lab d'ores et déjà financé "
        "dans le cadre d'un projet du contrat de plan Etat-région obtenu par "
        "l'Université de l'Artois."
    ),
    (
        'Tops et flops du Louvre-Lens (2/4)\xa0: deuxième étage de la fusée, un '
        'cluster numérique\nPiloté dès 2010 par Raouti Chehih, le directeur '
        'général du temple lillois du numérique Euratechnologies, ce projet de '
        '"pôle numérique culturel" aura eu beaucoup de mal à voir le jour. '
        'Originaire de ce bassin minier où son père a travaillé, Raouti Chehih '
        'avait pourtant déjà réuni la presse en juin 2011 à la communauté '
        "d'agglomération de Lens-Lieven pour le présenter. Il était alors "
        'question de créer entre 1.000 et 1.500 emplois sur ce territoire grâce '
        'au numérique.'
    ),
    (
        'Tops et flops du Louvre-Lens (2/4)\xa0: deuxième étage de la fusée, un '
        "cluster numérique\nC'était sans compter sur les dissensions entre les "
        "élus locaux, puis les changements d'équipes au sein des mairies, des "
        "communautés d'agglomérations et de la Région. Il aura fallu attendre "
        'juin 2013 pour que l\'association de ce "pôle numérique culturel" soit '
        'enfin inscrite dans les registres de la préfecture. Mais il manque '
        "encore la convention permettant d'avoir l'appui, sur place à Lens, d'un "
        "«\xa0expert\xa0» d'Euratechnologies. Elle dépend d'une commande publique en "
        'attente.'
    ),
    (
        'Tops et flops du Louvre-Lens (2/4)\xa0: deuxième étage de la fusée, un '
        "cluster numérique\nPour ne rien arranger, l'association s'est retrouvée "
        'sans direction durant plusieurs mois, sa directrice Malika Aït Gherbi '
        'Palmer ayant été nommée début 2015 à la tête de Pictanovo, le pôle '
        'régional de la production audiovisuelle basé à Tourcoing. En mai 2015, '
        'Wafâa Maadnous reprenait les rênes du "pôle numérique culturel", entre '
        'temps baptisé "Louvre Lens Vallée"(LLV).'
    ),
    (
        'Tops et flops du Louvre-Lens (2/4)\xa0: deuxième étage de la fusée, un '
        "cluster numérique\n«\xa0Je voulais m'investir dans un projet qui ait "
        'du\xa0sens, un sens autre que celui de faire seulement du business. Ce '
        "poste me permet de participer à la transformation d'un territoire en y "
        'développant des activités économiques qui lui donnent une image '
        "positive et améliorent son attractivité. C'est très motivant\xa0», "
        "explique-t-elle.\n\n... la LLV accélère (appel à projets, Connec'TIC "
        'Days, CulturAthon...)'
    ),
    (
        'Tops et flops du Louvre-Lens (2/4)\xa0: deuxième étage de la fusée, un '
        'cluster numérique\nSix lauréats avaient été primés, dont la société '
        "Urbik qui, grâce à la LLV, a remporté un appel d'offres de la Ville de "
        'Paris portant sur\xa0des bornes connectées touristiques dans le cadre de '
        "l'Euro 2016."
    ),
    (
        'Tops et flops du Louvre-Lens (2/4)\xa0: deuxième étage de la fusée, un '
        'cluster numérique\n"Nous seulement, nous avons rencontré les équipes de '
        'Bayard avec qui nous sommes toujours en relation, mais nous avons '
        'également tissé des liens avec Audace, une agence de Lens à qui nous '
        'avons apporté notre expertise de narration longue pour leur projet de '
        'jeux pédagogiques. Il y a eu une période de flottement après le départ '
        "de l'ancienne directrice. La dynamique a bien repris depuis."
    ),
    (
        'Tops et flops du Louvre-Lens (2/4)\xa0: deuxième étage de la fusée, un '
        "cluster numérique\nEn plus des Connec'Tic Days, qui ont rassemblé un "
        "millier de visiteurs et une quarantaine d'entreprises, s'est tenue une "
        "conférence sur l'e-éducation en lien avec Canopé, le réseau des maisons "
        "d'édition de l'Education nationale, et Amazon en tant que spécialiste "
        "de l'auto-édition. En outre, LLV était présent au dernier Mobile World "
        'Congress de Barcelone (22-25 février 2016). En avril, il organisait le '
        "premier CulturAthon autour de l'e-tourisme, de l'auto-édition et du "
        'sport.'
    ),
    (
        'Tops et flops du Louvre-Lens (2/4)\xa0: deuxième étage de la fusée, un '
        'cluster numérique\nUn objectif de 70 entreprises et de 500 '
        "emplois\n\nComme aime à le rappeler Wafâa Maadnous,\n\n«\xa0le rôle d'un "
        'cluster comme le nôtre est de créer du réseau, pour innover et aider à '
        'la création de nouvelles entreprises appelées à se développer. Dans cet '
        'objectif, nous lançons également le Campus Louvre Lens Vallée, avec des '
        "acteurs de l'économie, de l'emploi et de la formation présents sur "
        'notre territoire ».'
    ),
    (
        'Tops et flops du Louvre-Lens (2/4)\xa0: deuxième étage de la fusée, un '
        "cluster numérique\nHébergé\xa0temporairement dans l'ancienne maison du "
        "directeur de l'Ecole Paul Bert située à deux pas du Louvre-Lens, le "
        'cluster va prochainement déménager dans des bâtiments modulables de 350 '
        'mètres carrés, qui resteront à demeure et seront mis plus tard à '
        'disposition des startups. Ensuite, fin 2017, il emménagera dans un '
        "bâtiment totem qui disposera d'un vaste atrium en verre à l'image de "
        "celui d'Euratechnologies et de la Plaine Images."
    ),
    (
        'Tops et flops du Louvre-Lens (2/4)\xa0: deuxième étage de la fusée, un '
        "cluster numérique\nLe million d'euros nécessaire à la construction et à "
        "l'aménagement du bâtiment est financé par la Communauté d'Agglomération "
        "de Lens-Lieven (CALL) avec l'aide de fonds Feder."
    ),
    (
        'La Serre numérique : bateau amiral du Valenciennois connecté\nMis à jour '
        'le 01/10/2020\nLa Serre numérique : bateau amiral du Valenciennois '
        'connecté\nA Valenciennes, la Serre numérique fédère les experts du '
        '"2.0".\n"Bienvenue dans la Serre numérique. Ce lieu de 17 000 m² '
        'entièrement consacré à la création numérique et aux métiers de '
        'l\'image." Caroline Tisserand, directrice générale de Rubika, n\'est pas '
        'peu fière de présenter le vaste bâtiment de béton et de verre, posé en '
        "bordure de l'Escaut, à Valenciennes (59)."
    ),
    (
        'La Serre numérique : bateau amiral du Valenciennois connecté\nForce est '
        'de constater que la dernière pépite du cabinet hollandais Olll '
        'Architecten ne passe pas inaperçue. Toute ressemblance avec les grandes '
        'structures de la Silicon Valley, en Californie serait fortuite… La '
        'Serre numérique est une grande verrière ultra-contemporaine, érigée au '
        "nord de Valenciennes sur l'ancien site industriel de Vallourec. Ici "
        'cohabitent les trois écoles du groupe Rubika, une pépinière '
        "d'entreprises, un centre de recherche appliquée et de transfert de "
        'technologies…'
    ),
    (
        'La Serre numérique : bateau amiral du Valenciennois connecté\nLieu '
        'propice à la création'
    ),
    (
        'La Serre numérique : bateau amiral du Valenciennois connecté\nFin 2015, '
        "il recevait le Prix de l'innovation, décerné par le Sénat."
    ),
    (
        'La Serre numérique : bateau amiral du Valenciennois connecté\n"Ce sont '
        "vraiment des conditions d'apprentissage et de travail optimales, que "
        'beaucoup nous envient, confirme avec malice Caroline Tisserand. '
        'Regardez les espaces de co-working, les lieux de vie, les zones où se '
        'juxtaposent des coupes de design, des vues en 3D, des post-it remplis '
        "d'idées griffonnées… Le tout fait de la Serre numérique un creuset où "
        'sont facilités les échanges, la création et la coproduction."'
    ),
    (
        'La Serre numérique : bateau amiral du Valenciennois connecté\nLe premier '
        'coup de pioche du chantier de la Serre numérique a été donné à '
        'Valenciennes en juin 2012, pour une inauguration le 9 avril 2015. La '
        'CCI Grand-Hainaut est maître d’ouvrage et gestionnaire de la Serre '
        "numérique. La Région et l'Union européenne ont cofinancé la "
        'construction du bâtiment (coût total de la Serre numérique : 34 000 000 '
        "€), à hauteur de 3 000 000 d'euros via la Région, et à hauteur de 6 000 "
        "000 d'euros via l'Union européenne avec le fonds européen FEDER."
    ),
)
