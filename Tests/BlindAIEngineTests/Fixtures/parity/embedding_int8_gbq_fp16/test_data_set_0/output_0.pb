
BlogitsJ─=LtLеа/M┼о,NРл⌡цйи╞яфЁC▐@бл²IO3M╜DЯиeFАф┬д╬L⌠еОMДPVкKюаснык┴ц=LtLеа/M┼о,NРл⌡цзF6лрАн╦L┼KвIlлPZTlTDF╕╡4L╖уWAPв1пURtфOряP9QG3ж²Kг┴кящTкл┼фан▐V╚SуC7MoPтэр7PН=╤K├прп9TтCT╗G
Qqц■лл╩ GягзF6лрАн╦L┼KвIlлPZTlTDF╕╡4L╖уW3M╜DЯиeFАф┬д╬L⌠ейи╞яфЁC▐@бл²IO╖OЩSlL:х}с]ф]иrр╛паб%EUнoNvг│OKeюзлУг'Q▓I6л╡HйRKI&тусТ>$Rц└J!TxтЦK▐QmN.хзпkсуu>кя|оOJ·г╕мРK╒н╖OЩSlL:х}с]ф]иrр`а
яЪа#Ktл┌ивPTрXJeKсyGJтN~P╓©6ммMцкzI╘иZK0EA╛паб%EUнoNvг│OK*Q(RlQU*тLP|о6п`а
яЪа#Ktл┌ивPTр╗MQ■║┘жгхурDтCуюK╦лpф─а╓тпTKFCT╗G
Qqц■лл╩ Gяг