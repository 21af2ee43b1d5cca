P
ByJ sËýG¶ÌˆÒ&ÉÍÐAš:IÛLóÌˆOL¹¿¬J HWH~ÒñÑíG”AÈG=GšO$@ÊHüÅ@ÌôM8É_ÉÉMQH¤ÐŽMÅHuOÐÊÏ’LíÍùÎ‰Ì'ÆÈtLóLBÍÚÌ„EFÞH»Í>F¸ÌTGÖN?IJ¼PƒÐCG!ÐLßÊ—PæH@½¨G%¹ˆË©ÏÍÐ6K’ËäQGÉ ÁéÎ³I